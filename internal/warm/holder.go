package warm

import (
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/trace"
	"golang.org/x/sys/unix"
)

// The holder's client side; the holder and its spares are package
// internal/holder, run by the box init's binary.
//
//	devbox ──connect──▶ Dir/h-XX.sock (SOCK_SEQPACKET; listened by the holder, accepted by a spare)
//	   "devbox-holder-2 NUL fingerprint NUL args…" + fds 0, 1, 2, 3, … by SCM_RIGHTS
//	                    ◀── "ok PID" (the spare's pid) or "no"
//	   the spec and the start byte on the init's pipes, as for a clone
//	                    ◀── "exit STATUS" from the holder when the spare ends

// IdleEnv sets a holder's idle time in seconds (tests use a short one).
const IdleEnv = "_DEVBOX_HOLDER_IDLE"

// DefaultIdle is how long a holder waits for the next run.
const DefaultIdle = 5 * time.Minute

// Magic starts a request to a spare.
const Magic = "devbox-holder-2"

// Held is an init a holder's spare became: not a child of the caller.
type Held struct {
	Pid  int
	conn int // stands for the caller: its end ends the box
}

// Request asks the holder for fingerprint fp for a spare and hands it
// files (its fds 0, 1, 2, 3, …) and argv. It returns nil when no holder
// listens there (absent) or it declines (another fingerprint, or it is
// going away); then nothing has started and files are still the caller's.
func Request(runtimeDir, fp string, argv []string, files []int) (h *Held, absent bool) {
	if !Private(runtimeDir) {
		return nil, false
	}
	sock, _ := Paths(runtimeDir, fp)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		unix.Close(fd)
		return nil, err == unix.ENOENT || err == unix.ECONNREFUSED
	}
	msg := []byte(Magic + "\x00" + fp + "\x00")
	for _, a := range argv {
		msg = append(append(msg, a...), 0)
	}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	if err := unix.Sendmsg(fd, msg, unix.UnixRights(files...), nil, 0); err != nil {
		unix.Close(fd)
		return nil, false
	}
	var buf [64]byte
	n, err := unix.Read(fd, buf[:])
	pid := 0
	if err == nil && n > 3 && string(buf[:3]) == "ok " {
		pid, _ = strconv.Atoi(string(buf[3:n]))
	}
	if pid <= 1 {
		unix.Close(fd) // declined, or the spare died: it holds nothing of ours
		trace.Mark("warm: holder declined")
		return nil, false
	}
	trace.Mark("warm: via holder, pid " + strconv.Itoa(pid))
	return &Held{Pid: pid, conn: fd}, false
}

// Wait waits for the holder's report of the init's wait status; false when
// the holder is gone without one.
func (h *Held) Wait() (syscall.WaitStatus, bool) {
	defer h.Close()
	_ = unix.SetsockoptTimeval(h.conn, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
	var buf [64]byte
	for {
		n, err := unix.Read(h.conn, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n < 6 || string(buf[:5]) != "exit " {
			return 0, false
		}
		ws, err := strconv.Atoi(string(buf[5:n]))
		return syscall.WaitStatus(ws), err == nil
	}
}

// Close lets the init go: it dies when its caller's end closes (as a
// cloned init dies with its parent).
func (h *Held) Close() {
	if h.conn >= 0 {
		unix.Close(h.conn)
		h.conn = -1
	}
}

// Spawn starts a holder for s in a new user namespace (the maps written
// by newuidmap and newgidmap, or directly for a single-id map, and not
// waited for: the holder waits for them), in a session of its own, with
// nothing of this process but its configuration on stdin. At most one
// attempt per 10 seconds and lock file.
func Spawn(runtimeDir string, s *Start, fp string) {
	if !Private(runtimeDir) {
		return
	}
	sock, lock := Paths(runtimeDir, fp)
	now := time.Now()
	if fi, err := os.Lstat(lock); err == nil && now.Sub(fi.ModTime()) < 10*time.Second {
		return
	}
	if err := os.Mkdir(Dir(runtimeDir), 0o700); err != nil && !os.IsExist(err) {
		return
	}
	lf, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return
	}
	lf.Close()
	_ = os.Chtimes(lock, now, now)
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer null.Close()
	errf := null
	if trace.On() { // the holder and its spares log next to the socket
		if f, err := os.OpenFile(sock[:len(sock)-len(".sock")]+".log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			defer f.Close()
			errf = f
		}
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return
	}
	defer cfgW.Close()
	idle := os.Getenv(IdleEnv)
	if idle == "" {
		idle = strconv.Itoa(int(DefaultIdle / time.Second))
	}
	env := []string{"_DEVBOX_STAGE=holder", "GOMAXPROCS=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if trace.On() {
		env = append(env, trace.Env+"=1")
	}
	// Only stdio: nothing this process inherited without close-on-exec may
	// reach the holder, which lives on (a pipe someone reads to its end).
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) != nil {
		return
	}
	pid, err := syscall.ForkExec(s.Exe, []string{"devbox-init", "holder"}, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{cfgR.Fd(), null.Fd(), errf.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			Setsid:      true,
			AmbientCaps: AllCaps(),
		},
	})
	cfgR.Close()
	if err != nil {
		return
	}
	_, _ = cfgW.Write(append([]byte(sock+"\x00"+lock+"\x00"+idle+"\x00"+fp+"\x00"), encode(s, nil)...))
	ps := strconv.Itoa(pid)
	if s.UIDMap[0] == "-" {
		writeDirectMaps("/proc/"+ps+"/", s.UIDMap[1], s.GIDMap[1])
	} else {
		// Not waited for (the holder waits for its maps): whoever
		// inherits them when this process ends reaps them.
		mapHelper(s.UIDMap, ps)
		mapHelper(s.GIDMap, ps)
	}
	trace.Mark("warm: holder spawned: " + sock)
}

// Config is a holder's configuration as Spawn writes it on its stdin.
type Config struct {
	Sock, Lock, FP string
	Idle           time.Duration
	Start          Start
}

// ReadConfig parses a holder's configuration.
func ReadConfig(b []byte) (Config, bool) {
	var c Config
	var f [4]string
	for i := range f {
		j := 0
		for j < len(b) && b[j] != 0 {
			j++
		}
		if j == len(b) {
			return c, false
		}
		f[i], b = string(b[:j]), b[j+1:]
	}
	idle, err := strconv.Atoi(f[2])
	s, _, ok := decode(b)
	if err != nil || !ok || idle <= 0 {
		return c, false
	}
	return Config{Sock: f[0], Lock: f[1], FP: f[3], Idle: time.Duration(idle) * time.Second, Start: s}, true
}

// writeDirectMaps writes a single-id map (the caller's own ids) into the
// user namespace whose process directory is proc, as its creator may.
func writeDirectMaps(proc, uidLine, gidLine string) bool {
	for _, f := range [][2]string{{"setgroups", "deny"}, {"uid_map", uidLine + "\n"}, {"gid_map", gidLine + "\n"}} {
		if os.WriteFile(proc+f[0], []byte(f[1]), 0) != nil {
			return false
		}
	}
	return true
}

// mapHelper starts newuidmap or newgidmap (argv: its path and arguments
// after the pid) for pid, output discarded.
func mapHelper(argv []string, pid string) {
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer null.Close()
	_, _ = syscall.ForkExec(argv[0], append([]string{argv[0], pid}, argv[1:]...), &syscall.ProcAttr{
		Env:   []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Files: []uintptr{null.Fd(), null.Fd(), null.Fd()},
	})
}
