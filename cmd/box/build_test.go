package box

import (
	"testing"

	"github.com/devbox-dev/devbox/boxfile"
)

// TestCheckBuildLoopback: only a build that installs packages from a
// repository on host.devbox.internal needs --host-loopback.
func TestCheckBuildLoopback(t *testing.T) {
	onHost := map[string]string{"apt": "deb [trusted=yes] http://host.devbox.internal:5080/ ./"}
	elsewhere := map[string]string{"apt": "deb http://deb.debian.org/debian trixie main"}
	pkgs := []boxfile.Spec{{Name: "a"}, {Name: "b", Packages: []string{"less"}}}
	hooks := []boxfile.Spec{{Name: "a", OnCreate: []string{"true"}}}
	for _, c := range []struct {
		name    string
		specs   []boxfile.Spec
		repos   map[string]string
		allowed bool
		refused bool
	}{
		{"packages from the host", pkgs, onHost, false, true},
		{"packages from the host, allowed", pkgs, onHost, true, false},
		{"packages from elsewhere", pkgs, elsewhere, false, false},
		{"no packages", hooks, onHost, false, false},
		{"no repositories", pkgs, nil, false, false},
	} {
		if err := checkBuildLoopback(c.specs, c.repos, c.allowed); (err != nil) != c.refused {
			t.Errorf("%s: %v, want refused %v", c.name, err, c.refused)
		}
	}
}
