//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	timed := func(t *testing.T, args ...string) result {
		t.Helper()
		c := e.cmd(args...)
		var out, errb strings.Builder
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			return result{out.String(), errb.String(), code}
		case <-time.After(20 * time.Second):
			c.Process.Kill()
			<-done
			t.Errorf("devbox %v still reading after 20s", args)
		}
		return result{code: -1}
	}
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
			timed(t, "stats", "--no-stream")
		})
	}
	timed(t, "rm", "-f", "dev")
}
