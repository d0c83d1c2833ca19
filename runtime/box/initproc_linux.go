package box

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// InitProcess identifies a box's init across pid reuse: its host pid, its
// start time (clock ticks after boot, /proc/PID/stat field 22) and the
// inodes of its PID and user namespaces. devbox records it in the box's
// init.pid at start, and signals a process only when all of it still holds.
type InitProcess struct {
	PID    int
	Start  uint64
	PIDNS  uint64
	UserNS uint64
}

func (p InitProcess) String() string {
	return fmt.Sprintf("%d %d %d %d", p.PID, p.Start, p.PIDNS, p.UserNS)
}

// parseInitProcess reads what String wrote.
func parseInitProcess(s string) (InitProcess, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return InitProcess{}, errors.New("not four numbers")
	}
	var p InitProcess
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 1 {
		return p, fmt.Errorf("bad pid %q", f[0])
	}
	p.PID = pid
	for i, dst := range []*uint64{&p.Start, &p.PIDNS, &p.UserNS} {
		if *dst, err = strconv.ParseUint(f[i+1], 10, 64); err != nil || *dst == 0 {
			return p, fmt.Errorf("bad number %q", f[i+1])
		}
	}
	return p, nil
}

// ProbeInit describes process pid as it is now, in proc (normally
// "/proc"), and checks that it can be a box init: PID 1 of a PID namespace
// below the caller's, in a user namespace other than the caller's.
func ProbeInit(proc string, pid int) (InitProcess, error) {
	dir := filepath.Join(proc, strconv.Itoa(pid))
	p := InitProcess{PID: pid}
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return p, err
	}
	// The command name may hold spaces and parentheses: fields count
	// from the last ")". Field 22 (starttime) is the 20th after it.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return p, errors.New("unreadable stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return p, errors.New("unreadable stat")
	}
	if p.Start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return p, errors.New("unreadable start time")
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return p, err
	}
	if !pidOneBelow(string(status)) {
		return p, errors.New("it is not PID 1 of a PID namespace of its own")
	}
	for _, ns := range []struct {
		name string
		ino  *uint64
	}{{"pid", &p.PIDNS}, {"user", &p.UserNS}} {
		var st, self unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, "ns", ns.name), &st); err != nil {
			return p, fmt.Errorf("reading its %s namespace: %w", ns.name, err)
		}
		if err := unix.Stat(filepath.Join(proc, "self", "ns", ns.name), &self); err != nil {
			return p, fmt.Errorf("reading our %s namespace: %w", ns.name, err)
		}
		if st.Ino == self.Ino && st.Dev == self.Dev {
			return p, fmt.Errorf("it is in devbox's own %s namespace", ns.name)
		}
		*ns.ino = st.Ino
	}
	return p, nil
}

// pidOneBelow reports whether a /proc/PID/status says the process is PID
// 1 of a PID namespace nested below the reader's ("NSpid: N ... 1").
func pidOneBelow(status string) bool {
	for _, l := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(l, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) >= 2 && f[len(f)-1] == "1"
		}
	}
	return false
}

// initPath is box id's init.pid.
func (s *Store) initPath(id string) string { return filepath.Join(s.RunDir(id), "init.pid") }

// RecordInit writes init.pid for the box id whose init has host pid pid,
// after checking that pid is a box init.
func (s *Store) RecordInit(id string, pid int) error {
	p, err := ProbeInit("/proc", pid)
	if err != nil {
		return fmt.Errorf("recording the box's init (pid %d): %w", pid, err)
	}
	path := s.initPath(id)
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(p.String() + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// readInit reads init.pid: a small regular file of the user's, not a link.
func (s *Store) readInit(id string) (InitProcess, error) {
	f, err := os.OpenFile(s.initPath(id), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return InitProcess{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return InitProcess{}, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > 256 {
		return InitProcess{}, errors.New("not a small regular file")
	}
	if st, ok := fi.Sys().(*unix.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return InitProcess{}, errors.New("not the user's file")
	}
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return InitProcess{}, err
	}
	return parseInitProcess(string(b))
}

// SignalInit sends sig to box id's init, and only to it: the process named
// by init.pid must still be the one recorded at start (pid, start time,
// PID and user namespace) and PID 1 of a namespace of its own. It is
// signalled through a pidfd taken before the checks, so a pid reused in
// between gets nothing.
func (s *Store) SignalInit(id string, sig unix.Signal) error {
	rec, err := s.readInit(id)
	if err != nil {
		return fmt.Errorf("the box's init.pid: %w", err)
	}
	return signalVerified("/proc", rec, sig)
}

func signalVerified(proc string, rec InitProcess, sig unix.Signal) error {
	pidfd, err := unix.PidfdOpen(rec.PID, 0)
	if err != nil {
		return fmt.Errorf("pid %d: %w", rec.PID, err)
	}
	defer unix.Close(pidfd)
	now, err := ProbeInit(proc, rec.PID)
	if err != nil {
		return fmt.Errorf("pid %d is not the box's init, not signalled: %w", rec.PID, err)
	}
	if now != rec {
		return fmt.Errorf("pid %d is not the box's init, not signalled: it is another process than the one started (%s, recorded %s)", rec.PID, now, rec)
	}
	return unix.PidfdSendSignal(pidfd, sig, nil, 0)
}

// InitAlive reports whether the init recorded in box id's init.pid still
// runs (the same process: pid, start time and namespaces). False when
// there is no record.
func (s *Store) InitAlive(id string) bool {
	rec, err := s.readInit(id)
	if err != nil {
		return false
	}
	now, err := ProbeInit("/proc", rec.PID)
	return err == nil && now == rec
}
