package child

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHighestMapped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gid_map")
	os.WriteFile(p, []byte("         0     200000       1000\n      1000       1000          1\n      1001     201000      64535\n"), 0o644)
	if got := highestMapped(p); got != 65535 {
		t.Errorf("got %d, want 65535", got)
	}
	if got := highestMapped(filepath.Join(t.TempDir(), "missing")); got != 0 {
		t.Errorf("missing map: %d", got)
	}
}
