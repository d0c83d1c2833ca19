package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBase: XDG_RUNTIME_DIR is used when it is the caller's and nobody
// else may write it; one others may write (where they could make devbox's
// directory first and stand in for a box's agent) is an error with a hint.
func TestBase(t *testing.T) {
	for _, c := range []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"private", 0o700, true},
		{"readable", 0o755, true},
		{"group-writable", 0o770, false},
		{"world-writable", 0o777, false},
		{"sticky", 0o777 | os.ModeSticky, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.Chmod(d, c.mode); err != nil {
				t.Fatal(err)
			}
			t.Setenv("XDG_RUNTIME_DIR", d)
			got, err := Base()
			if c.ok && (err != nil || got != filepath.Join(d, "devbox")) {
				t.Errorf("Base() = %q, %v; want %s", got, err, filepath.Join(d, "devbox"))
			}
			if !c.ok && (err == nil || !strings.Contains(err.Error(), "hint:")) {
				t.Errorf("Base() = %q, %v; want an error with a hint", got, err)
			}
		})
	}
}
