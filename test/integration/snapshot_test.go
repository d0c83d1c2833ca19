//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/image/store"
)

// snapRecord is what the snapshot tests read of devbox inspect.
type snapRecord struct {
	ID        string   `json:"id"`
	Lowers    []string `json:"lowers"`
	Snapshots []struct {
		Tag    string   `json:"tag"`
		Lowers []string `json:"lowers"`
	} `json:"snapshots"`
}

func (e *env) snapRecord(name string) snapRecord {
	e.t.Helper()
	var r snapRecord
	out := e.ok("inspect", name).stdout
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("inspect %s: %v: %s", name, err, out)
	}
	return r
}

// TestSnapshotRollbackClone: a file installed before a snapshot is back
// after it was removed and the box rolled back; a clone stacks the same
// layers (the store grows by < 100 KB although the box wrote 1 MiB), its
// writes stay its own; the frozen layers are roots while a box stacks
// them, and go with the last box that stacks them.
func TestSnapshotRollbackClone(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "snap", "--image", "busybox", "--net", "none", "--home", filepath.Join(e.home, "snap"))
	e.ok("exec", "--root", "snap", "sh", "-c", "echo v1 > /etc/installed")

	// A running box is refused, with the way out.
	if r := e.run("snapshot", "snap", "base"); r.code == 0 || !strings.Contains(r.stderr, "--stop") {
		t.Fatalf("snapshot of a running box: exit %d, %q", r.code, r.stderr)
	}
	if out := strings.TrimSpace(e.ok("snapshot", "--stop", "snap", "base").stdout); out != "base" {
		t.Errorf("snapshot printed %q, want base", out)
	}
	rec := e.snapRecord("snap")
	if len(rec.Snapshots) != 1 || len(rec.Lowers) != len(e.lowers("docker.io/library/busybox:1"))+1 || !slices.Equal(rec.Snapshots[0].Lowers, rec.Lowers) {
		t.Fatalf("record after the snapshot: %+v", rec)
	}
	frozen := rec.Lowers[0]

	e.ok("exec", "--root", "snap", "rm", "/etc/installed")
	if r := e.run("exec", "snap", "cat", "/etc/installed"); r.code == 0 {
		t.Fatal("the file survived its removal")
	}
	e.ok("rollback", "--stop", "snap", "base")
	if out := e.ok("exec", "snap", "cat", "/etc/installed").stdout; out != "v1\n" {
		t.Errorf("after rollback: %q, want v1", out)
	}

	// Clone: nothing copied; what the source wrote since is frozen too.
	e.ok("exec", "--root", "snap", "sh", "-c", "touch /etc/before-clone && head -c 1048576 /dev/urandom > /etc/blob")
	e.ok("stop", "snap")
	before := store.DiskUsage(e.root)
	e.ok("clone", "snap", "snap2")
	growth := store.DiskUsage(e.root) - before
	t.Logf("clone grew the store by %d bytes", growth)
	if growth >= 100<<10 {
		t.Errorf("clone grew the store by %d bytes, want < 100 KB", growth)
	}
	src, dup := e.snapRecord("snap"), e.snapRecord("snap2")
	if !slices.Equal(src.Lowers, dup.Lowers) || len(dup.Lowers) != len(rec.Lowers)+1 || len(dup.Snapshots) != 0 || dup.ID == src.ID {
		t.Errorf("clone %+v of %+v", dup, src)
	}
	if out := e.ok("exec", "snap2", "sh", "-c", "cat /etc/installed && wc -c < /etc/blob && test -e /etc/before-clone").stdout; out != "v1\n1048576\n" {
		t.Errorf("the clone sees %q", out)
	}
	e.ok("exec", "--root", "snap2", "touch", "/etc/clone-only")
	if r := e.run("exec", "snap", "test", "-e", "/etc/clone-only"); r.code == 0 {
		t.Error("a write in the clone shows in its source")
	}

	rep, code := verifyReport(t, e)
	if code != 0 || rep.Snapshots < 2 {
		t.Errorf("verify: exit %d, %d snapshot layer(s), problems %+v", code, rep.Snapshots, rep.Problems)
	}

	// GC: the source's frozen layers stay while the clone stacks them.
	e.ok("rm", "-f", "snap")
	e.ok("image", "prune")
	layer := func(l string) bool { _, err := os.Lstat(filepath.Join(e.root, "layers", l)); return err == nil }
	if !layer(frozen) || !layer(dup.Lowers[0]) {
		t.Fatal("GC removed a layer the clone stacks")
	}
	// rm of the last box that stacks them removes them.
	e.ok("rm", "-f", "snap2")
	if layer(frozen) || layer(dup.Lowers[0]) {
		t.Error("the frozen layers survived the last box that stacked them")
	}
}
