package box

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/devbox-dev/devbox/image/store"
	"golang.org/x/sys/unix"
)

// findRun finds a devbox run in progress by its id or a prefix of it (at
// least 6 characters), as devbox ps shows it.
func (m *Manager) findRun(prefix string) (store.LiveRun, bool) {
	if len(prefix) < 6 {
		return store.LiveRun{}, false
	}
	for _, r := range m.st.LiveRuns() {
		if strings.HasPrefix(r.ID, prefix) {
			return r, true
		}
	}
	return store.LiveRun{}, false
}

// stopRun stops a devbox run in progress: its devbox gets SIGTERM, which
// it passes to the command, then SIGKILL after 3 s (the box dies with
// it). Only the process that holds the run's lock is signalled.
func (m *Manager) stopRun(r store.LiveRun) error {
	for i, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		if err := m.signalRun(r, sig); err != nil {
			if !m.st.RunLive(r.ID) {
				return nil
			}
			return err
		}
		deadline := time.Now().Add(3 * time.Second)
		if i == 1 {
			deadline = time.Now().Add(2 * time.Second)
		}
		for time.Now().Before(deadline) {
			if !m.st.RunLive(r.ID) {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return fmt.Errorf("devbox run %s (pid %d) did not stop", r.ID[:12], r.PID)
}

// signalRun sends sig to the devbox of run r after checking, through a
// pidfd taken first, that this process holds the run's lock (/proc/locks).
func (m *Manager) signalRun(r store.LiveRun, sig unix.Signal) error {
	if r.PID <= 0 {
		return fmt.Errorf("devbox run %s: its lock names no process", r.ID[:12])
	}
	pidfd, err := unix.PidfdOpen(r.PID, 0)
	if err != nil {
		return fmt.Errorf("devbox run %s: pid %d: %w", r.ID[:12], r.PID, err)
	}
	defer unix.Close(pidfd)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(m.st.Root, "locks", "run-"+r.ID+".lock"), &st); err != nil {
		return err
	}
	if !holdsLock("/proc/locks", r.PID, st.Dev, st.Ino) {
		return fmt.Errorf("devbox run %s: pid %d does not hold its lock, not signalled", r.ID[:12], r.PID)
	}
	return unix.PidfdSendSignal(pidfd, sig, nil, 0)
}

// holdsLock reports whether the locks file (/proc/locks) shows pid
// holding a lock on the file dev:ino.
func holdsLock(locks string, pid int, dev, ino uint64) bool {
	f, err := os.Open(locks)
	if err != nil {
		return false
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
		fl := strings.Fields(sc.Text())
		if len(fl) >= 6 && fl[1] == "FLOCK" && fl[4] == strconv.Itoa(pid) && fl[5] == want {
			return true
		}
	}
	return false
}
