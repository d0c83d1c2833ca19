package helper

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/devbox-dev/devbox/network/host"
)

// TestStateDirOfNextStart: the helper of a box's next start makes a new
// state directory where the previous helper's still is (its box died and
// it is tearing down); the previous helper then no longer owns the path
// and leaves its successor's files alone.
func TestStateDirOfNextStart(t *testing.T) {
	run := t.TempDir()
	old := &helper{o: host.Options{RunDir: run}}
	if err := old.makeStateDir(); err != nil {
		t.Fatal(err)
	}
	if !old.ownsStateDir() {
		t.Fatal("a helper does not own the state directory it made")
	}
	os.WriteFile(filepath.Join(old.o.StateDir(), "stale"), nil, 0o600)
	next := &helper{o: host.Options{RunDir: run}}
	if err := next.makeStateDir(); err != nil {
		t.Fatal(err)
	}
	if old.ownsStateDir() || !next.ownsStateDir() {
		t.Errorf("after the next start: previous owns %v (want false), next owns %v (want true)", old.ownsStateDir(), next.ownsStateDir())
	}
	ents, _ := os.ReadDir(run)
	if len(ents) != 1 || ents[0].Name() != "net" {
		t.Errorf("run directory holds %v, want only net", ents)
	}
	if _, err := os.Stat(filepath.Join(next.o.StateDir(), "stale")); !os.IsNotExist(err) {
		t.Errorf("the previous start's files are in the new state directory: %v", err)
	}
	if (&helper{o: host.Options{RunDir: run}}).ownsStateDir() {
		t.Error("a helper that made no state directory owns one")
	}
}
