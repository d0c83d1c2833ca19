package warm

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/internal/trace"
	"golang.org/x/sys/unix"
)

// The holder's client side (the holder is internal/holder):
//
//	devbox ──connect──▶ Dir/h-XX.sock (SOCK_SEQPACKET; the holder)
//	   Magic, the fingerprint, args… + fds 0, 1, 2, 3, … by SCM_RIGHTS
//	                    ◀── "ok", PID + the spare's pidfd, or "no"
//	   the spec and the start byte on the init's pipes, as for a clone
//	                    ◀── "exit", STATUS from the holder when the spare ends

// IdleEnv sets a holder's idle time in seconds (tests use a short one).
const IdleEnv = "_DEVBOX_HOLDER_IDLE"

// Magic starts a request.
const Magic = "devbox-holder-3"

// MaxFDs bounds the descriptors of a request (stdio and the start's pipes).
const MaxFDs = 16

// Send sends one message of the warm path on a SOCK_SEQPACKET socket:
// parts, each ended by a NUL, and fds.
func Send(sock int, fds []int, parts ...string) error {
	var b, oob []byte
	for _, p := range parts {
		b = append(append(b, p...), 0)
	}
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	return unix.Sendmsg(sock, b, oob, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
}

// Recv reads one message (Send's) with at most MaxFDs+1 descriptors,
// close-on-exec; on an error with the descriptors that came, to close.
func Recv(sock int) (parts []string, fds []int, err error) {
	buf, oob := make([]byte, 1<<16), make([]byte, unix.CmsgSpace(4*(MaxFDs+1)))
	n, oobn, flags, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	for err == unix.EINTR {
		n, oobn, flags, _, err = unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:max(oobn, 0)])
	for i := range msgs {
		if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	if err == nil && (n <= 0 || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || buf[n-1] != 0) {
		err = errors.New("not a message")
	}
	if err != nil {
		return nil, fds, err
	}
	return strings.Split(string(buf[:n-1]), "\x00"), fds, nil
}

// Held is an init a holder's spare became: not a child of the caller.
type Held struct {
	Pid   int
	mu    sync.Mutex
	pidfd int // the init's, from the holder: never another process's pid
	conn  int // stands for the caller: its end ends the box
}

// Take asks the holder for fingerprint fp for a spare and hands it files
// (its fds 0, 1, 2, 3, …) and argv, moves it into the cgroup open as
// cgroup (unless -1; it has run nothing of the box yet) and writes the
// start byte on start. It returns nil when no holder listens (absent), it
// declines, or the move is refused (cgroup.MayMove); then nothing has
// started. runtimeDir must be Private.
func Take(runtimeDir, fp string, argv []string, files []int, cgroup, start int) (h *Held, absent bool) {
	sock, _ := Paths(runtimeDir, fp)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		unix.Close(fd)
		return nil, err == unix.ENOENT || err == unix.ECONNREFUSED
	}
	h = &Held{conn: fd, pidfd: -1}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	if Send(fd, files, append([]string{Magic, fp}, argv...)...) == nil {
		r, fds, err := Recv(fd)
		if err == nil && len(r) == 2 && r[0] == "ok" && len(fds) == 1 {
			h.Pid, _ = strconv.Atoi(r[1])
			h.pidfd, fds = fds[0], nil
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if h.Pid <= 1 {
		h.Close()
		trace.Mark("warm: holder declined")
		return nil, false
	}
	if cgroup >= 0 {
		fd, err := unix.Openat(cgroup, "cgroup.procs", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			_, err = unix.Write(fd, []byte(strconv.Itoa(h.Pid)))
			unix.Close(fd)
		}
		if err != nil {
			h.Close()
			trace.Mark("warm: spare let go: cannot move it into the box's cgroup: " + err.Error())
			return nil, false
		}
	}
	trace.Mark("warm: via holder, pid " + strconv.Itoa(h.Pid))
	_, _ = unix.Write(start, []byte{'\n'}) // a dead init shows in its status
	return h, false
}

// Wait waits for the holder's report of the init's end and returns its
// exit code (128+N for signal N); false when the holder is gone without one.
func (h *Held) Wait() (int, bool) {
	defer h.Close()
	_ = unix.SetsockoptTimeval(h.conn, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
	r, _, err := Recv(h.conn)
	if err != nil || len(r) != 2 || r[0] != "exit" {
		return 0, false
	}
	n, err := strconv.Atoi(r[1])
	if ws := syscall.WaitStatus(n); ws.Signaled() {
		return 128 + int(ws.Signal()), err == nil
	}
	return syscall.WaitStatus(n).ExitStatus(), err == nil
}

// Signal sends sig to the init while it is held (an error after Close).
func (h *Held) Signal(sig syscall.Signal) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pidfd < 0 {
		return os.ErrProcessDone
	}
	return unix.PidfdSendSignal(h.pidfd, sig, nil, 0)
}

// Close lets the init go: it dies with its connection, as a cloned init
// with its parent.
func (h *Held) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn >= 0 {
		unix.Close(h.conn)
		h.conn = -1
	}
	if h.pidfd >= 0 {
		unix.Close(h.pidfd)
		h.pidfd = -1
	}
}

// Config is a holder's configuration, on its stdin as JSON.
type Config struct {
	RuntimeDir string // Paths(RuntimeDir, FP) are its socket and lock
	FP         string
	Idle       int // seconds without a box before it exits
	Start      Start
}

// ReadConfig parses and checks a holder's configuration.
func ReadConfig(b []byte) (Config, bool) {
	var c Config
	ok := decode(b, &c) && c.Start.valid() && c.Idle > 0 && strings.HasPrefix(c.RuntimeDir, "/") && len(c.FP) == 32
	return c, ok
}

// Spawn starts a holder for s in a new user namespace (its maps written
// and not waited for), in a session of its own, with nothing of this
// process but its configuration on stdin; at most once per 10 seconds and
// lock file. runtimeDir must be Private.
func Spawn(runtimeDir string, s *Start, fp string) {
	sock, lock := Paths(runtimeDir, fp)
	if fi, err := os.Lstat(lock); err == nil && time.Since(fi.ModTime()) < 10*time.Second {
		return
	}
	_ = os.Mkdir(Dir(runtimeDir), 0o700)
	lf, err := safefile.OpenLock(lock, 0o600)
	if err != nil {
		return
	}
	lf.Close()
	now := time.Now()
	_ = os.Chtimes(lock, now, now)
	idle, _ := strconv.Atoi(os.Getenv(IdleEnv))
	if idle <= 0 {
		idle = 300
	}
	cfg, _ := json.Marshal(Config{RuntimeDir: runtimeDir, FP: fp, Idle: idle, Start: *s})
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return
	}
	defer cfgW.Close()
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		cfgR.Close()
		return
	}
	defer null.Close()
	errf, env := null, []string{"_DEVBOX_STAGE=holder", "GOMAXPROCS=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	// When tracing, a log next to the socket (a blocking fd 2: a spare's
	// runtime would open its poller for a non-blocking one).
	if trace.On() {
		if f, err := os.OpenFile(strings.TrimSuffix(sock, ".sock")+".log", os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600); err == nil {
			defer f.Close()
			errf, env = f, append(env, trace.Env+"=1")
		}
	}
	// Nothing inherited without close-on-exec may reach the holder.
	err = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	pid := 0
	if err == nil {
		pid, err = syscall.ForkExec(s.Exe, []string{"devbox-init", "holder"}, &syscall.ProcAttr{
			Env:   env,
			Files: []uintptr{cfgR.Fd(), null.Fd(), errf.Fd()},
			Sys:   &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, Setsid: true, AmbientCaps: AllCaps()},
		})
	}
	cfgR.Close()
	if err != nil {
		return
	}
	_, _ = cfgW.Write(cfg)
	if s.UIDMap[0] == "-" {
		_ = WriteSingleMaps(pid, s.UIDMap[1], s.GIDMap[1])
	}
	for _, m := range [][]string{s.UIDMap, s.GIDMap} {
		// Not waited for: whoever inherits them reaps them.
		if m[0] != "-" {
			_, _ = syscall.ForkExec(m[0], append([]string{m[0], strconv.Itoa(pid)}, m[1:]...), &syscall.ProcAttr{
				Env: env[2:3], Files: []uintptr{null.Fd(), null.Fd(), null.Fd()}})
		}
	}
	trace.Mark("warm: holder spawned: " + sock)
}

// WriteSingleMaps writes a single-id map into the user namespace of pid,
// as its creator may.
func WriteSingleMaps(pid int, uidLine, gidLine string) error {
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	for _, f := range [][2]string{{"setgroups", "deny"}, {"uid_map", uidLine + "\n"}, {"gid_map", gidLine + "\n"}} {
		if err := os.WriteFile(proc+f[0], []byte(f[1]), 0); err != nil {
			return err
		}
	}
	return nil
}
