// Package holder is devbox run's warm holder: a process that keeps a user
// namespace with the id maps of a replayed run and spare box inits in the
// other five namespaces, waiting for the next run with the same start
// (the client side, and why, is package internal/warm).
//
// Processes and what crosses between them:
//
//   - devbox (warm.Spawn) starts the holder in a new user namespace, in a
//     session of its own; on stdin it gets its socket and lock paths, its
//     idle time, the fingerprint it serves and the start (warm.Config).
//   - The holder waits for its id maps, takes the lock (one holder per
//     socket), listens on the socket and forks two spares: the box init's
//     binary, with the start's environment and clone flags (but no new
//     user namespace), the listening socket on fd 3 and a control socket
//     on fd 4, on which each learns its pid and the fingerprint.
//   - A spare readies itself (runtime.WarmUp: root of the namespace, lo
//     up, /proc, /sys and /dev staged, signals registered), then accepts
//     one connection: a request "devbox-holder-2 NUL fingerprint NUL
//     args…" with the run's descriptors (stdin, stdout, stderr, then the
//     start's pipes). It tells the holder it was taken (passing a copy of
//     the connection), answers "ok PID", puts the descriptors at 0, 1, 2,
//     3, … as a clone would have, takes the arguments as its own and
//     returns to become the box init. From then on it is that run's init:
//     the spec and the start byte come on its pipes as for any other
//     start, and it dies when the connection's other end closes (devbox
//     is gone).
//   - The holder forks a replacement, and when a taken spare ends, writes
//     "exit STATUS" (its wait status) on the connection, for a devbox that
//     got no exit code on its status pipe. A change of its mount table
//     replaces the waiting spares (theirs are copies of it).
package holder

import (
	"bytes"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"golang.org/x/sys/unix"
)

// Stage is the holder's stage name (_DEVBOX_STAGE).
const Stage = "holder"

// SpareEnv marks a box init started as a spare.
const SpareEnv = "_DEVBOX_SPARE"

// Spare fds as the holder passes them.
const (
	spareListenFD = 3
	spareCtlFD    = 4
	highFD        = 100 // where the spare keeps its own descriptors
)

type holder struct {
	r        warm.Start
	fp       string
	sock     string
	lock     string
	stage    string // where spares stage their mounts (each on its own tmpfs)
	listen   int
	null     int
	idle     time.Duration
	lastUse  time.Time
	spares   map[int]*spare // waiting spares by pid
	failures int            // spares that died young in a row
	quitting bool
	forkAt   time.Time   // when to fork the spare that replaces a taken one
	boxes    map[int]int // taken spares: pid → connection
	caps     []uintptr
}

// A spare as the holder sees it.
type spare struct {
	ctl     int // the holder's end of its control socket
	born    time.Time
	retired bool // told to quit (the mount table changed)
}

// pool is how many spares wait: with two, the next of a quick series of
// runs finds one ready while the one that replaces the last starts.
const pool = 2

// Main is the holder stage: it returns when it has been idle for its idle
// time with no box running, or cannot serve.
func Main() int {
	code, why := serve()
	if why != "" {
		trace.Mark("holder: " + why)
	}
	return code
}

func serve() (int, string) {
	// Whatever devbox inherited without close-on-exec stays here.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return 1, "close_range: " + err.Error()
	}
	b, err := readAll(0, 4<<20)
	if err != nil {
		return 1, "reading the configuration"
	}
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 1, "opening /dev/null"
	}
	_ = unix.Dup3(null, 0, 0)
	cfg, ok := warm.ReadConfig(b)
	if !ok {
		return 1, "a bad configuration"
	}
	r, sock, lock, fp := cfg.Start, cfg.Sock, cfg.Lock, cfg.FP
	// The maps: devbox started newuidmap and newgidmap (or wrote them) and
	// did not wait.
	for deadline := time.Now().Add(5 * time.Second); !mapped("uid_map") || !mapped("gid_map"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return 1, "no id maps"
		}
	}
	lfd, err := unix.Open(lock, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 1, "opening the lock: " + err.Error()
	}
	if unix.Flock(lfd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return 0, "another holder serves this socket"
	}
	ls, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 1, "socket: " + err.Error()
	}
	_ = unix.Unlink(sock)
	old := unix.Umask(0o177)
	err = unix.Bind(ls, &unix.SockaddrUnix{Name: sock})
	unix.Umask(old)
	if err != nil {
		return 1, "bind: " + err.Error()
	}
	defer unix.Unlink(sock)
	if err := unix.Listen(ls, 64); err != nil {
		return 1, "listen: " + err.Error()
	}
	// The spares' parent-death signal follows the thread that forks them.
	runtime.LockOSThread()
	// A directory for the spares' staged mounts (each spare mounts its own
	// tmpfs there, in its own mount namespace).
	stage := strings.TrimSuffix(sock, ".sock") + ".stage"
	if err := unix.Mkdir(stage, 0o700); err != nil && err != unix.EEXIST {
		stage = ""
	} else {
		defer unix.Rmdir(stage)
	}
	// Non-blocking, for the spares, which all wait on it.
	if err := unix.SetNonblock(ls, true); err != nil {
		return 1, "listen: " + err.Error()
	}
	h := &holder{r: r, fp: fp, sock: sock, lock: lock, stage: stage, listen: ls, null: null, idle: cfg.Idle, lastUse: time.Now(),
		spares: map[int]*spare{}, boxes: map[int]int{}, caps: warm.AllCaps()}
	trace.Mark("holder: serving " + sock)
	return h.loop()
}

func (h *holder) loop() (int, string) {
	// SIGCHLD through a pipe, so that one poll waits for everything.
	var sp [2]int
	if err := unix.Pipe2(sp[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return 1, "pipe: " + err.Error()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	go func() {
		for range sigs {
			_, _ = unix.Write(sp[1], []byte{0})
		}
	}()
	// The mount table: a spare's mount namespace is a copy of it from the
	// spare's start, so a change replaces the spares.
	mounts, err := unix.Open("/proc/self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 1, "opening mountinfo: " + err.Error()
	}
	for len(h.spares) < pool {
		if err := h.fork(); err != nil {
			return 1, "starting a spare: " + err.Error()
		}
	}
	var buf [64]byte
	for {
		if h.quitting && len(h.spares) == 0 && len(h.boxes) == 0 {
			return 0, "done"
		}
		if !h.forkAt.IsZero() && !time.Now().Before(h.forkAt) {
			h.forkNow()
			continue
		}
		timeout := -1
		if !h.quitting && len(h.boxes) == 0 {
			timeout = int(time.Until(h.lastUse.Add(h.idle))/time.Millisecond) + 1
			if timeout <= 0 {
				h.quit()
				continue
			}
		}
		if !h.forkAt.IsZero() {
			if t := int(time.Until(h.forkAt)/time.Millisecond) + 1; timeout < 0 || t < timeout {
				timeout = t
			}
		}
		// (No spare and one due cannot last: readCtl and reap fork at once
		// when the last spare goes.)
		fds := []unix.PollFd{{Fd: int32(sp[0]), Events: unix.POLLIN}, {Fd: int32(mounts), Events: unix.POLLPRI}}
		pids := make([]int, 0, len(h.spares))
		for pid, s := range h.spares {
			pids = append(pids, pid)
			fds = append(fds, unix.PollFd{Fd: int32(s.ctl), Events: unix.POLLIN})
		}
		if _, err := unix.Poll(fds, timeout); err != nil && err != unix.EINTR {
			return 1, "poll: " + err.Error()
		}
		// The control sockets first: a spare's "taken" is there before
		// its end could be reaped.
		for i, pid := range pids {
			if fds[2+i].Revents != 0 {
				h.readCtl(pid)
			}
		}
		if fds[0].Revents != 0 {
			for {
				if n, _ := unix.Read(sp[0], buf[:]); n <= 0 {
					break
				}
			}
			h.reap()
		}
		if fds[1].Revents != 0 {
			for _, s := range h.spares {
				if !s.retired {
					s.retired = true
					_, _ = unix.Write(s.ctl, []byte("quit"))
				}
			}
		}
	}
}

// quit stops serving: no new connections, the spares told to go.
func (h *holder) quit() {
	h.quitting = true
	_ = unix.Unlink(h.sock)
	for _, s := range h.spares {
		_, _ = unix.Write(s.ctl, []byte("quit"))
	}
}

// fork starts a spare.
func (h *holder) fork() error {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	mark := "1"
	if h.r.Flags&unix.CLONE_NEWNET != 0 {
		mark = "net"
	}
	if h.stage != "" {
		mark += "," + h.stage
	}
	env := append(append([]string{}, h.r.Env...), SpareEnv+"="+mark)
	errFd := uintptr(h.null)
	if trace.On() {
		errFd = 2 // the holder's log
	}
	pid, err := syscall.ForkExec(h.r.Exe, []string{"devbox-init", "spare"}, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{uintptr(h.null), uintptr(h.null), errFd, uintptr(h.listen), uintptr(sp[1])},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  h.r.Flags &^ unix.CLONE_NEWUSER,
			Setpgid:     h.r.Setpgid,
			Pdeathsig:   syscall.SIGKILL,
			AmbientCaps: h.caps,
		},
	})
	unix.Close(sp[1])
	if err != nil {
		unix.Close(sp[0])
		return err
	}
	h.spares[pid] = &spare{ctl: sp[0], born: time.Now()}
	_, _ = unix.Write(sp[0], []byte(strconv.Itoa(pid)+"\x00"+h.fp))
	return nil
}

// readCtl reads a spare's control socket: "taken" with the connection, or
// its end.
func (h *holder) readCtl(pid int) {
	s := h.spares[pid]
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(s.ctl, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	conn := -1
	if err == nil && oobn > 0 {
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
			if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
				conn = fds[0]
			}
		}
	}
	if err != nil || string(buf[:n]) != "taken" || conn < 0 {
		return // its end (reaped below) or nonsense
	}
	h.boxes[pid] = conn
	unix.Close(s.ctl)
	delete(h.spares, pid)
	h.lastUse = time.Now()
	h.failures = 0
	if h.quitting {
		return
	}
	if len(h.spares) == 0 {
		h.forkNow()
		return
	}
	// Not at once: a new spare's start would take CPU from this box's.
	// When the box ends, after replenishDelay, or when the next run finds
	// no spare, whichever is first.
	if h.forkAt.IsZero() {
		h.forkAt = time.Now().Add(replenishDelay)
	}
}

// replenishDelay is how long the holder waits with a new spare while a box
// starts.
const replenishDelay = 20 * time.Millisecond

// forkNow forks the spares that are due.
func (h *holder) forkNow() {
	h.forkAt = time.Time{}
	for !h.quitting && len(h.spares) < pool {
		if h.fork() != nil {
			h.quitting = true
		}
	}
}

// reap collects ended children: a box's status goes to its devbox; a
// spare that ended untaken is replaced, unless spares keep dying.
func (h *holder) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 {
			return
		}
		if conn, ok := h.boxes[pid]; ok {
			_ = unix.Sendto(conn, []byte("exit "+strconv.Itoa(int(ws))), unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT, nil)
			unix.Close(conn)
			delete(h.boxes, pid)
			if !h.forkAt.IsZero() {
				h.forkNow()
			}
			continue
		}
		s, ok := h.spares[pid]
		if !ok {
			continue
		}
		unix.Close(s.ctl)
		delete(h.spares, pid)
		if h.quitting {
			continue
		}
		if !s.retired && time.Since(s.born) < 2*time.Second {
			h.failures++
		}
		if h.failures >= 3 {
			// Something is wrong with this start: no holder for it for a
			// while (devbox starts one only when the lock file is older
			// than a few seconds).
			later := time.Now().Add(10 * time.Minute).UnixNano()
			ts := []unix.Timespec{unix.NsecToTimespec(later), unix.NsecToTimespec(later)}
			_ = unix.UtimesNano(h.lock, ts)
			trace.Mark("holder: spares keep dying")
			h.quit()
			continue
		}
		h.forkNow()
	}
}

// mapped reports whether the process's uid_map or gid_map is written.
func mapped(name string) bool {
	b, err := os.ReadFile("/proc/self/" + name)
	return err == nil && len(bytes.TrimSpace(b)) > 0
}

func readAll(fd, max int) ([]byte, error) {
	var b []byte
	buf := make([]byte, 64<<10)
	for len(b) < max {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return b, nil
		}
		b = append(b, buf[:n]...)
	}
	return nil, unix.E2BIG
}
