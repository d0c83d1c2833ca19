//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEscapeStoreCgroupRecord: a box directory's cgroup record
// (containers/<id>/cgroup) is input like box.json: a dev box can plant
// it as a fifo or a link to /dev/zero when the store is under its home.
// devbox stats and rm -f must not wait on it forever or read it without
// bound (cgroup.ReadRecord: a small regular file, no link, naming the
// box's own cgroup).
func TestEscapeStoreCgroupRecord(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "dev", "--image", "busybox")
	rec := filepath.Join(e.boxDir("dev"), "cgroup")
	for _, plant := range []struct {
		name string
		do   func() error
	}{
		{"fifo", func() error { return unix.Mkfifo(rec, 0o600) }},
		{"link to /dev/zero", func() error { return os.Symlink("/dev/zero", rec) }},
	} {
		t.Run(plant.name, func(t *testing.T) {
			os.Remove(rec)
			if err := plant.do(); err != nil {
				t.Fatal(err)
			}
			e.within(t, 20*time.Second, "stats", "--no-stream")
		})
	}
	e.within(t, 20*time.Second, "rm", "-f", "dev")
}
