package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyAndRepair(t *testing.T) {
	for _, c := range []struct {
		name     string
		damage   func(fx *gcFixture)
		problems []string // kind/name prefixes expected
		pull     bool     // the image must be pulled again
		unmarked int
	}{
		{name: "clean", damage: func(*gcFixture) {}},
		{name: "corrupt layer blob", damage: func(fx *gcFixture) {
			os.WriteFile(fx.s.BlobPath(fx.layerBlobs[1]), []byte("bit rot"), 0o644)
		}, problems: []string{"blob/" + "<layer1>", "image/example.com/x:1"}, pull: true},
		{name: "missing config", damage: func(fx *gcFixture) {
			os.Remove(fx.s.BlobPath(fx.cfg))
		}, problems: []string{"image/example.com/x:1"}, pull: true},
		{name: "layer without marker (an older devbox's)", damage: func(fx *gcFixture) {
			os.Remove(filepath.Join(fx.s.layerInfoDir(), fx.chains[0].Hex))
		}, unmarked: 1},
		{name: "damaged marker", damage: func(fx *gcFixture) {
			os.WriteFile(filepath.Join(fx.s.layerInfoDir(), fx.chains[0].Hex), []byte("{"), 0o644)
		}, problems: []string{"layer/<chain0>", "image/example.com/x:1"}, pull: true},
		{name: "layer is a file", damage: func(fx *gcFixture) {
			os.RemoveAll(fx.s.LayerDir(fx.chains[1]))
			os.WriteFile(fx.s.LayerDir(fx.chains[1]), nil, 0o644)
		}, problems: []string{"layer/<chain1>", "image/example.com/x:1"}, pull: true},
		{name: "marker naming another layer", damage: func(fx *gcFixture) {
			os.WriteFile(filepath.Join(fx.s.layerInfoDir(), fx.boxChain), []byte(`{"chain":"`+fx.runSpec+`","diffID":"sha256:`+fx.runSpec+`"}`), 0o644)
		}, problems: []string{"layer/<boxChain>"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newGCFixture(t)
			subst := strings.NewReplacer("<layer1>", fx.layerBlobs[1].Hex, "<chain0>", fx.chains[0].Hex, "<chain1>", fx.chains[1].Hex, "<boxChain>", fx.boxChain)
			c.damage(fx)
			rep, err := fx.s.Verify()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.Kind+"/"+p.Name)
			}
			if len(got) != len(c.problems) {
				t.Fatalf("problems %v, want %v", rep.Problems, c.problems)
			}
			for i, want := range c.problems {
				if got[i] != subst.Replace(want) {
					t.Errorf("problem %d: %s, want %s", i, got[i], subst.Replace(want))
				}
			}
			if rep.Unmarked != c.unmarked {
				t.Errorf("%d unmarked layers, want %d", rep.Unmarked, c.unmarked)
			}
			if rep.Garbage == 0 {
				t.Errorf("the fixture's garbage was not counted")
			}
			after, err := fx.s.Repair(rep, fx.s.RemoveTrees)
			if err != nil {
				t.Fatal(err)
			}
			if len(after.Problems) != 0 || after.Garbage != 0 {
				t.Errorf("after repair: %+v", after)
			}
			if (len(after.PullAgain) == 1) != c.pull {
				t.Errorf("pull again: %v, want the image: %v", after.PullAgain, c.pull)
			}
		})
	}
}
