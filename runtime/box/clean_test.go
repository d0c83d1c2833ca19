package box

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCleanStale: a stopped box's runtime state goes, its logs stay;
// nothing goes while its lock is held (a start or rm in progress) or in a
// dry run.
func TestCleanStale(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		name       string
		held, dry  bool
		wantGone   bool
		wantListed int
	}{
		{name: "stopped", wantGone: true, wantListed: 4},
		{name: "dry run", dry: true, wantListed: 4},
		{name: "lock held", held: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			s := &Store{Dir: filepath.Join(base, "containers"), LocksDir: filepath.Join(base, "locks"), RuntimeDir: filepath.Join(base, "run")}
			for _, d := range []string{s.Dir, s.LocksDir, filepath.Join(s.RunDir(id), "net")} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"agent.sock", "init.pid", "ports.json", "box.log", "net.log"} {
				os.WriteFile(filepath.Join(s.RunDir(id), f), nil, 0o600)
			}
			if c.held {
				unlock, err := s.Lock("box-" + id)
				if err != nil {
					t.Fatal(err)
				}
				defer unlock()
			}
			got := s.CleanStale(id, c.dry)
			if len(got) != c.wantListed {
				t.Errorf("listed %v, want %d entries", got, c.wantListed)
			}
			for _, f := range []string{"agent.sock", "init.pid", "ports.json", "net"} {
				_, err := os.Lstat(filepath.Join(s.RunDir(id), f))
				if gone := err != nil; gone != c.wantGone {
					t.Errorf("%s gone: %v, want %v", f, gone, c.wantGone)
				}
			}
			for _, f := range []string{"box.log", "net.log"} {
				if _, err := os.Lstat(filepath.Join(s.RunDir(id), f)); err != nil {
					t.Errorf("log %s removed", f)
				}
			}
		})
	}
}
