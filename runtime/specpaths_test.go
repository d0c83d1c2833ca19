package runtime

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSpecPaths(t *testing.T) {
	const (
		id    = "0123456789abcdef0123456789abcdef"
		root  = "/home/u/.local/share/devbox"
		layer = root + "/layers/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	)
	good := func() *Spec {
		return &Spec{Version: SpecVersion, ID: id, Lowers: []string{layer}, ContainerDir: root + "/containers/" + id,
			Args: []string{"sh"}, Hostname: "x", Net: "none",
			Mounts: []Mount{{Source: "/home/u", Target: "/home/u"}}}
	}
	for _, c := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"as written", func(*Spec) {}, ""},
		{"outside a store", func(s *Spec) { s.ContainerDir, s.Lowers = "/tmp/box", []string{"/tmp/l1"} }, ""},
		{"lower outside the store", func(s *Spec) { s.Lowers = []string{"/home/victim/canary"} }, "is not a layer of the store"},
		{"lower with ..", func(s *Spec) { s.Lowers = []string{root + "/layers/../../../../home/victim"} }, `".." element`},
		{"relative lower", func(s *Spec) { s.Lowers = []string{"layers/x"} }, "not an absolute path"},
		{"container dir of another box", func(s *Spec) { s.ContainerDir = root + "/containers/ffffffffffff" }, "not the directory of box"},
		{"container dir with ..", func(s *Spec) { s.ContainerDir = "/tmp/x/../../home/u" }, `".." element`},
		{"mount source with ..", func(s *Spec) { s.Mounts[0].Source = "/srv/../home/victim" }, `".." element`},
		{"relative mount target", func(s *Spec) { s.Mounts[0].Target = "home" }, "not an absolute path"},
		{"id with a slash", func(s *Spec) { s.ID = "../../0123456789" }, "is not 12 to 64"},
		{"early gvisor network", func(s *Spec) { s.Net, s.NetFD, s.NetEarly = "gvisor", 3, true }, ""},
		{"early pasta network", func(s *Spec) { s.Net, s.NetFD, s.NetEarly = "pasta", 3, true }, "early network start with network pasta"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := good()
			c.edit(s)
			b, _ := json.Marshal(s)
			_, err := ParseSpec(b)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want containing %q", err, c.want)
			}
		})
	}
}
