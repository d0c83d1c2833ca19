// Package holder is devbox run's warm holder (stage "holder" of the box
// init's binary): it keeps a user namespace with a start's id maps and two
// spare box inits in the other five namespaces, and gives each checked
// request on its socket to a spare, which becomes that run's init. The
// client side is internal/warm; docs/architecture.md, "The warm path", has
// the protocol. A spare's fd 3 is its control socket: its mode ("n": a
// network namespace of its own, or "-"), then the run's arguments and
// descriptors, the connection to devbox last; closed untaken, it exits.
package holder

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"golang.org/x/sys/unix"
)

// Stage is the holder's stage name (_DEVBOX_STAGE).
const Stage = "holder"

type holder struct {
	cfg      warm.Config
	sock     string
	lock     string
	listen   int
	lastUse  time.Time
	spares   map[int]*spare // waiting spares by pid
	failures int            // spares that died young in a row
	quitting bool
	forkAt   time.Time      // when to fork the spare that replaces a taken one
	boxes    map[int]*spare // taken spares by pid
}

// A spare as the holder sees it.
type spare struct {
	pidfd int // readable when it ends
	ctl   int // the holder's end of its control socket, -1 once let go
	conn  int // taken: the connection to its devbox
	born  time.Time
}

// pool is how many spares wait: with two, the next of a quick series of
// runs finds one ready while the one that replaces the last starts.
const pool = 2

// Main is the holder stage: it returns when it has been idle for its idle
// time with no box running, or cannot serve.
func Main() int {
	code, why := serve()
	trace.Mark("holder: " + why)
	return code
}

func serve() (int, string) {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return 1, "close_range: " + err.Error()
	}
	b, _ := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	cfg, ok := warm.ReadConfig(b)
	if !ok {
		return 1, "a bad configuration"
	}
	// Stdin /dev/null from now on; the spares' stdio too.
	if null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil || unix.Dup3(null, 0, 0) != nil {
		return 1, "opening /dev/null"
	}
	// devbox did not wait for newuidmap and newgidmap.
	for deadline := time.Now().Add(5 * time.Second); !mapped("uid_map") || !mapped("gid_map"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return 1, "no id maps"
		}
	}
	sock, lock := warm.Paths(cfg.RuntimeDir, cfg.FP)
	lf, err := safefile.OpenLock(lock, 0o600)
	if err != nil {
		return 1, "opening the lock: " + err.Error()
	}
	defer lf.Close()
	if safefile.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return 0, "another holder serves this socket"
	}
	ls, err := listen(sock)
	if err != nil {
		return 1, "listening on " + sock + ": " + err.Error()
	}
	defer unix.Unlink(sock)
	// The spares' parent-death signal follows the thread that forks them.
	runtime.LockOSThread()
	h := &holder{cfg: cfg, sock: sock, lock: lock, listen: ls, lastUse: time.Now(),
		spares: map[int]*spare{}, boxes: map[int]*spare{}}
	trace.Mark("holder: serving " + sock)
	return h.loop()
}

// listen makes the holder's socket, 0600.
func listen(sock string) (int, error) {
	ls, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.Unlink(sock)
	old := unix.Umask(0o177)
	err = unix.Bind(ls, &unix.SockaddrUnix{Name: sock})
	unix.Umask(old)
	if err == nil {
		err = unix.Listen(ls, 64)
	}
	return ls, err
}

// loop serves on one thread, in one poll: the socket, the mount table (a
// spare's mount namespace is a copy from its start, so a change replaces
// the spares) and each child's pidfd (readable once it ended).
func (h *holder) loop() (int, string) {
	mfd, err := unix.Open("/proc/self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 1, "opening mountinfo: " + err.Error()
	}
	idle := time.Duration(h.cfg.Idle) * time.Second
	h.forkNow()
	for !h.quitting || len(h.spares)+len(h.boxes) > 0 {
		pfds := []unix.PollFd{{Fd: int32(mfd), Events: unix.POLLPRI}, {Fd: int32(h.listen), Events: unix.POLLIN}}
		if h.quitting {
			pfds[1].Fd = -1
		}
		var pids []int
		for _, m := range []map[int]*spare{h.spares, h.boxes} {
			for pid, s := range m {
				pfds, pids = append(pfds, unix.PollFd{Fd: int32(s.pidfd), Events: unix.POLLIN}), append(pids, pid)
			}
		}
		next := time.Now().Add(time.Hour)
		if !h.quitting && len(h.boxes) == 0 {
			next = h.lastUse.Add(idle)
		}
		if !h.forkAt.IsZero() && h.forkAt.Before(next) {
			next = h.forkAt
		}
		if _, err := unix.Poll(pfds, max(0, int(time.Until(next).Milliseconds())+1)); err != nil && err != unix.EINTR {
			return 1, "poll: " + err.Error()
		}
		if pfds[0].Revents != 0 {
			for _, s := range h.spares {
				s.retire()
			}
		}
		if pfds[1].Revents != 0 {
			if c, _, err := unix.Accept4(h.listen, unix.SOCK_CLOEXEC); err == nil {
				args, fds, ok := request(c, h.cfg.FP, os.Getuid())
				h.take(c, args, fds, ok)
			} else if err != unix.EINTR && err != unix.ECONNABORTED {
				trace.Mark("holder: accept: " + err.Error())
				h.quit()
			}
		}
		for i, pid := range pids {
			if pfds[2+i].Revents != 0 {
				h.reap(pid)
			}
		}
		if !h.forkAt.IsZero() && !time.Now().Before(h.forkAt) {
			h.forkNow()
		}
		if !h.quitting && len(h.boxes) == 0 && time.Since(h.lastUse) >= idle {
			h.quit()
		}
	}
	return 0, "done"
}

// retire lets a spare go: it exits when its control socket closes.
func (s *spare) retire() {
	if s.ctl >= 0 {
		unix.Close(s.ctl)
		s.ctl = -1
	}
}

// quit stops serving: no new connections, the spares let go.
func (h *holder) quit() {
	h.quitting = true
	_ = unix.Unlink(h.sock)
	_ = unix.Shutdown(h.listen, unix.SHUT_RDWR)
	for _, s := range h.spares {
		s.retire()
	}
}

// fork starts a spare and sends it its mode.
func (h *holder) fork() error {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	r, errFd := h.cfg.Start, uintptr(0) // /dev/null
	if trace.On() {
		errFd = 2 // the holder's log
	}
	pidfd := -1
	pid, err := syscall.ForkExec(r.Exe, []string{"devbox-init", spareArg}, &syscall.ProcAttr{
		Env:   r.Env,
		Files: []uintptr{0, 0, errFd, uintptr(sp[1])},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  r.Flags &^ unix.CLONE_NEWUSER,
			Setpgid:     r.Setpgid,
			Pdeathsig:   syscall.SIGKILL,
			AmbientCaps: warm.AllCaps(),
			PidFD:       &pidfd,
		},
	})
	unix.Close(sp[1])
	if err != nil {
		unix.Close(sp[0])
		return err
	}
	mode := "-"
	if r.Flags&unix.CLONE_NEWNET != 0 {
		mode = "n"
	}
	_ = warm.Send(sp[0], nil, mode)
	h.spares[pid] = &spare{pidfd: pidfd, ctl: sp[0], conn: -1, born: time.Now()}
	return nil
}

// take hands a checked request to the oldest waiting spare (the likeliest
// to be ready) and answers "ok PID" with its pidfd, or "no".
func (h *holder) take(conn int, args []string, fds []int, ok bool) {
	if ok && !h.quitting && len(h.spares) == 0 {
		h.forkNow()
	}
	pid := 0
	for p, s := range h.spares {
		if s.ctl >= 0 && (pid == 0 || s.born.Before(h.spares[pid].born)) {
			pid = p
		}
	}
	if s := h.spares[pid]; ok && !h.quitting && pid != 0 && warm.Send(s.ctl, append(fds, conn), args...) == nil {
		_ = warm.Send(conn, []int{s.pidfd}, "ok", strconv.Itoa(pid))
		s.retire()
		s.conn, h.boxes[pid] = conn, s
		delete(h.spares, pid)
		h.lastUse, h.failures = time.Now(), 0
		// Not at once unless none is left: its start would take CPU from
		// this box's. When the box ends or after replenishDelay.
		if len(h.spares) == 0 {
			h.forkNow()
		} else if h.forkAt.IsZero() {
			h.forkAt = time.Now().Add(replenishDelay)
		}
	} else {
		_ = warm.Send(conn, nil, "no")
		unix.Close(conn)
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// request reads and checks one request: from uid, warm.Magic, fingerprint
// fp, arguments, stdio and pipes; a silent client is given up after 1 s.
func request(conn int, fp string, uid int) (args []string, fds []int, ok bool) {
	if cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED); err != nil || int(cred.Uid) != uid {
		return nil, nil, false
	}
	_ = unix.SetsockoptTimeval(conn, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	parts, fds, err := warm.Recv(conn)
	// The connection goes to the init, which reads it without a timeout.
	if err != nil || unix.SetsockoptTimeval(conn, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{}) != nil ||
		len(fds) < 4 || len(fds) > warm.MaxFDs || len(parts) < 3 || parts[0] != warm.Magic || parts[1] != fp {
		return nil, fds, false
	}
	return parts[2:], fds, true
}

// replenishDelay is how long the holder waits with a new spare while a box
// starts.
const replenishDelay = 20 * time.Millisecond

// forkNow forks the spares that are due.
func (h *holder) forkNow() {
	h.forkAt = time.Time{}
	for !h.quitting && len(h.spares) < pool {
		if err := h.fork(); err != nil {
			trace.Mark("holder: starting a spare: " + err.Error())
			h.quit()
		}
	}
}

// reap collects child pid: a box's status goes to its devbox; a spare
// that ended untaken is replaced, unless spares keep dying.
func (h *holder) reap(pid int) {
	var ws unix.WaitStatus
	_, err := unix.Wait4(pid, &ws, 0, nil)
	for err == unix.EINTR {
		_, err = unix.Wait4(pid, &ws, 0, nil)
	}
	if b, ok := h.boxes[pid]; ok {
		_ = warm.Send(b.conn, nil, "exit", strconv.Itoa(int(ws)))
		unix.Close(b.conn)
		unix.Close(b.pidfd)
		delete(h.boxes, pid)
		if !h.forkAt.IsZero() {
			h.forkNow()
		}
		return
	}
	s := h.spares[pid]
	if s.ctl >= 0 && time.Since(s.born) < 2*time.Second {
		h.failures++
	}
	s.retire()
	unix.Close(s.pidfd)
	delete(h.spares, pid)
	if h.quitting {
		return
	}
	if h.failures >= 3 {
		// No holder for this start for a while (Spawn checks the lock's
		// time).
		later := time.Now().Add(10 * time.Minute)
		_ = os.Chtimes(h.lock, later, later)
		trace.Mark("holder: spares keep dying")
		h.quit()
		return
	}
	h.forkNow()
}

// mapped reports whether the process's uid_map or gid_map is written.
func mapped(name string) bool {
	b, err := os.ReadFile("/proc/self/" + name)
	return err == nil && len(bytes.TrimSpace(b)) > 0
}
