package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGCSnapshotLayers: a snapshot layer is a root while a box record
// names it (in its lowers, a snapshot's lowers or a pending freeze) and
// garbage once no record does.
func TestGCSnapshotLayers(t *testing.T) {
	layer := strings.Repeat("5", 64)
	for _, c := range []struct {
		name   string
		record string // box.json of the one box; "" = the box was removed
		kept   bool
	}{
		{"in the box's lowers", `{"lowers":["` + layer + `"]}`, true},
		{"in a snapshot", `{"lowers":["` + strings.Repeat("6", 64) + `"],"snapshots":[{"tag":"a","lowers":["` + layer + `"]}]}`, true},
		{"pending freeze", `{"lowers":[],"pending":{"op":"freeze","layer":"` + layer + `"}}`, true},
		{"hostile name in a snapshot", `{"lowers":[],"snapshots":[{"tag":"a","lowers":["../` + layer + `x"]}]}`, false},
		{"box removed", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			mkdir(t, filepath.Join(s.LayersDir(), layer, "etc"))
			if err := s.WriteSnapshotMarker(layer, strings.Repeat("1", 32), 1, 10); err != nil {
				t.Fatal(err)
			}
			if c.record != "" {
				box := filepath.Join(s.ContainersDir(), strings.Repeat("1", 32))
				mkdir(t, box)
				writeFile(t, filepath.Join(box, "box.json"), c.record)
			}
			rep, err := s.GC(GCOptions{Remove: s.RemoveTrees})
			if err != nil {
				t.Fatal(err)
			}
			_, err = os.Stat(filepath.Join(s.LayersDir(), layer))
			if kept := err == nil; kept != c.kept {
				t.Errorf("layer kept: %v, want %v (report %+v)", kept, c.kept, rep.Items)
			}
			_, err = os.Stat(filepath.Join(s.layerInfoDir(), layer))
			if kept := err == nil; kept != c.kept {
				t.Errorf("marker kept: %v, want %v", kept, c.kept)
			}
		})
	}
}

// TestFreeze: the snapshot stage's moves, run here on a store the test
// owns (no namespace needed).
func TestFreeze(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("1", 32)
	box := filepath.Join(s.ContainersDir(), id)
	mkdir(t, filepath.Join(box, "upper", "etc"))
	writeFile(t, filepath.Join(box, "upper", "etc", "marker"), "hello")
	mkdir(t, filepath.Join(box, "work", "work"))
	layer := NewSnapshotLayer()
	for _, c := range []struct {
		name    string
		req     FreezeRequest
		wantErr bool
		check   func(t *testing.T, res FreezeResult)
	}{
		{"freeze", FreezeRequest{Op: FreezeOp, Box: id, Layer: layer}, false, func(t *testing.T, res FreezeResult) {
			if b, err := os.ReadFile(filepath.Join(s.LayersDir(), layer, "etc", "marker")); err != nil || string(b) != "hello" {
				t.Errorf("frozen layer: %q, %v", b, err)
			}
			if res.Files != 2 || res.Bytes != 5 {
				t.Errorf("counted %d files, %d bytes; want 2, 5", res.Files, res.Bytes)
			}
		}},
		{"again: nothing moves", FreezeRequest{Op: FreezeOp, Box: id, Layer: layer}, false, func(t *testing.T, res FreezeResult) {
			if _, err := os.Stat(filepath.Join(s.LayersDir(), layer, "etc", "marker")); err != nil {
				t.Error(err)
			}
		}},
		{"reset", FreezeRequest{Op: ResetOp, Box: id}, false, func(t *testing.T, res FreezeResult) {
			if ents, _ := os.ReadDir(s.TmpDir()); len(ents) != 0 {
				t.Errorf("tmp/ keeps %v", ents)
			}
		}},
		{"upper is a symlink", FreezeRequest{Op: FreezeOp, Box: id, Layer: NewSnapshotLayer()}, true, nil},
		{"bad layer", FreezeRequest{Op: FreezeOp, Box: id, Layer: "../../x"}, true, nil},
		{"bad box", FreezeRequest{Op: FreezeOp, Box: "../" + id, Layer: layer}, true, nil},
		{"bad op", FreezeRequest{Op: "copy", Box: id}, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			switch c.name {
			case "reset":
				writeFile(t, filepath.Join(box, "upper", "scratch"), "x")
			case "upper is a symlink":
				victim := t.TempDir()
				os.Remove(filepath.Join(box, "upper"))
				if err := os.Symlink(victim, filepath.Join(box, "upper")); err != nil {
					t.Fatal(err)
				}
				defer func() {
					os.Remove(filepath.Join(box, "upper"))
					mkdir(t, filepath.Join(box, "upper"))
					if ents, _ := os.ReadDir(s.LayersDir()); len(ents) != 1 {
						t.Errorf("a layer was made of the link: %v", ents)
					}
				}()
			}
			res, err := s.freeze(c.req)
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v, want error: %v", err, c.wantErr)
			}
			if c.wantErr {
				return
			}
			if ents, err := os.ReadDir(filepath.Join(box, "upper")); err != nil || len(ents) != 0 {
				t.Errorf("upper after %s: %v, %v; want an empty directory", c.req.Op, ents, err)
			}
			if _, err := os.Stat(filepath.Join(box, "work")); err == nil {
				t.Error("work/ survived")
			}
			c.check(t, res)
		})
	}
}
