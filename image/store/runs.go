package store

import (
	"encoding/json"
	"errors"
	"github.com/devbox-dev/devbox/internal/safefile"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// runLockPrefix names the lock a devbox run holds for its whole life:
// locks/run-<id>.lock. A box directory without a record, or a runtime
// directory, whose run lock is free belongs to a run that is gone.
const runLockPrefix = "run-"

// RunLock marks run id live until release is called, which removes the
// lock file. devbox run takes it before it creates the box's directory in
// containers/ or its runtime directory, so that prune never removes those
// of a run whose devbox is still there; a devbox killed at any moment
// leaves the lock free (the kernel drops it with the process).
//
// The lock file carries info (RunInfo, JSON) for devbox ls --all and
// devbox stop: which devbox process runs the box, from which image.
func (s *Store) RunLock(id string, info RunInfo) (release func(), err error) {
	if !isRunID(id) {
		return nil, errors.New("invalid run id " + id)
	}
	p := filepath.Join(s.locksDir(), runLockPrefix+id+".lock")
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, storeErr("creating run lock", err, s.Root)
	}
	if err := safefile.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return nil, storeErr("taking run lock", err, s.Root)
	}
	if b, err := json.Marshal(info); err == nil {
		_ = unix.Ftruncate(fd, 0)
		_, _ = unix.Pwrite(fd, b, 0)
	}
	return func() {
		_ = os.Remove(p)
		unix.Close(fd)
	}, nil
}

// StaleRun is a run whose devbox is gone; its lock is held until Done.
type StaleRun struct {
	ID   string
	fd   int
	path string
}

// Done removes the run's lock file and releases it.
func (r StaleRun) Done() {
	_ = os.Remove(r.path)
	unix.Close(r.fd)
}

// StaleRuns returns the runs whose lock is free, each locked by the caller
// until its Done: nothing can take them meanwhile (a run id is never
// reused). Lock files that are not regular files are ignored.
func (s *Store) StaleRuns() []StaleRun {
	ents, _ := os.ReadDir(s.locksDir())
	var out []StaleRun
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), runLockPrefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if id, ok = strings.CutSuffix(id, ".lock"); !ok || !isRunID(id) {
			continue
		}
		p := filepath.Join(s.locksDir(), e.Name())
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if safefile.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
			unix.Close(fd) // a live run
			continue
		}
		out = append(out, StaleRun{ID: id, fd: fd, path: p})
	}
	return out
}

// RunInfo is what a live run's lock file says about it.
type RunInfo struct {
	PID   int    `json:"pid"`   // the devbox process of the run
	Image string `json:"image"` // as given on the command line
	Name  string `json:"name,omitempty"`
}

// LiveRun is a run whose devbox still holds its lock.
type LiveRun struct {
	ID string
	RunInfo
}

// LiveRuns returns the runs whose devbox is still there, with what their
// lock files say (input from disk: a PID that is not positive is 0).
func (s *Store) LiveRuns() []LiveRun {
	ents, _ := os.ReadDir(s.locksDir())
	var out []LiveRun
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), runLockPrefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if id, ok = strings.CutSuffix(id, ".lock"); !ok || !isRunID(id) {
			continue
		}
		if r, ok := s.liveRun(id); ok {
			out = append(out, r)
		}
	}
	return out
}

// RunLive reports whether run id's devbox still holds its lock.
func (s *Store) RunLive(id string) bool {
	if !isRunID(id) {
		return false
	}
	_, ok := s.liveRun(id)
	return ok
}

func (s *Store) liveRun(id string) (LiveRun, bool) {
	p := filepath.Join(s.locksDir(), runLockPrefix+id+".lock")
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return LiveRun{}, false
	}
	defer unix.Close(fd)
	if safefile.Flock(fd, unix.LOCK_SH|unix.LOCK_NB) == nil {
		return LiveRun{}, false // free: the run is gone
	}
	r := LiveRun{ID: id}
	buf := make([]byte, 4096)
	if n, err := unix.Pread(fd, buf, 0); err == nil && n > 0 {
		_ = json.Unmarshal(buf[:n], &r.RunInfo)
	}
	if r.PID <= 0 {
		r.PID = 0
	}
	return r, true
}

// HasRunLock reports whether run id has a lock file, free or held.
func (s *Store) HasRunLock(id string) bool {
	_, err := os.Lstat(filepath.Join(s.locksDir(), runLockPrefix+id+".lock"))
	return err == nil
}

// isRunID accepts box ids as runtime.NewID makes them: 32 lowercase hex
// digits (12 to 64 allowed).
func isRunID(id string) bool {
	if len(id) < 12 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
