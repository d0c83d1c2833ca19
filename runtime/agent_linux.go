package runtime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/runtime/agent"
	"golang.org/x/sys/unix"
)

// agentListenerFD is where the host passes the box's listening socket.
const agentListenerFD = 3

// session is one command started for a client.
type session struct {
	pid  int
	conn *agent.Conn
	done bool
}

// boxAgent serves sessions for a persistent box (Spec.Agent). The host
// created the listening socket in the user's runtime directory and passed
// it as fd 3, so the socket file belongs to the user and the agent never
// needs a path on the host.
type boxAgent struct {
	spec    *Spec
	ids     IDMaps
	started time.Time

	accounts boxAccounts

	mu       sync.Mutex
	sessions map[int]*session
	early    map[int]unix.WaitStatus // reaped before registration
	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	// why is set once the box is stopping: the sessions it ends are told
	// why, and no new session starts.
	why string
}

// requestStop stops the box; why is what its sessions are told.
func (a *boxAgent) requestStop(why string) {
	a.stopOnce.Do(func() {
		a.mu.Lock()
		a.why = why
		a.mu.Unlock()
		close(a.stop)
	})
}

// stopping returns why the box is stopping, "" while it is not.
func (a *boxAgent) stopping() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.why
}

func (a *boxAgent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// serveAgent runs until the box stops: after its last session left and the
// grace period passed, on a stop request, or on SIGTERM.
func serveAgent(s *Spec, ids IDMaps, listener *os.File) (int, error) {
	fl, err := net.FileListener(listener)
	listener.Close()
	if err != nil {
		return 125, fmt.Errorf("using the box socket: %w", err)
	}
	l, ok := fl.(*net.UnixListener)
	if !ok {
		return 125, errors.New("the box socket is not a unix socket")
	}
	l.SetUnlinkOnClose(false) // the host owns the socket file
	a := &boxAgent{spec: s, ids: ids, started: time.Now(),
		sessions: map[int]*session{}, early: map[int]unix.WaitStatus{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go a.handle(agent.NewConn(c))
		}
	}()
	grace := time.Duration(s.GraceSeconds) * time.Second
	if grace <= 0 {
		grace = 10 * time.Second
	}
	timer := time.NewTimer(grace)
	idle := true
	for {
		select {
		case sig := <-sigs:
			if sig != unix.SIGCHLD {
				a.requestStop("box " + s.Name + " stopped: its init received " + unix.SignalName(sig.(unix.Signal)))
				continue
			}
			a.reap()
		case <-a.wake:
		case <-timer.C:
			if a.count() == 0 {
				l.Close()
				return 0, nil
			}
		case <-a.stop:
			// The socket stays open until every session is gone: devbox
			// stop waits for that (status still answers; exec is refused).
			a.terminate()
			l.Close()
			return 0, nil
		}
		n := a.count()
		switch {
		case n == 0 && !idle:
			idle = true
			timer.Reset(grace)
		case n > 0 && idle:
			idle = false
			timer.Stop()
		}
	}
}

func (a *boxAgent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sessions)
}

// reap collects every exited child; sessions get their exit reply.
func (a *boxAgent) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		a.mu.Lock()
		se := a.sessions[pid]
		if se == nil {
			a.early[pid] = ws
		} else {
			delete(a.sessions, pid)
		}
		a.mu.Unlock()
		if se != nil {
			a.finish(se, ws)
		}
	}
}

// awaitExit finishes session se as soon as its process exits: its pidfd
// turns readable in the Go runtime's poller, which wakes this goroutine
// directly — not the SIGCHLD's way through the runtime's signal handler,
// os/signal's goroutine and the agent's main loop (the exit reply of a
// short command waited on that chain). reap still collects every other
// child, and a session's process when it gets there first; whoever takes
// the session out of a.sessions sends its exit reply.
func (a *boxAgent) awaitExit(se *session, pidfd int) {
	ws, ok := waitPidfd(pidfd)
	if !ok {
		return // reaped by reap
	}
	a.mu.Lock()
	mine := a.sessions[se.pid] == se
	if mine {
		delete(a.sessions, se.pid)
	}
	a.mu.Unlock()
	if mine {
		a.finish(se, ws)
		a.poke() // the main loop counts the sessions (grace period)
	}
}

// waitPidfd waits, in the runtime's poller, until the process of pidfd
// exits, reaps it and returns its status; false when it was reaped
// elsewhere (ECHILD) or the pidfd cannot be polled. It closes pidfd.
func waitPidfd(pidfd int) (unix.WaitStatus, bool) {
	if err := unix.SetNonblock(pidfd, true); err != nil {
		unix.Close(pidfd)
		return 0, false
	}
	f := os.NewFile(uintptr(pidfd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	var ws unix.WaitStatus
	var ok bool
	err = rc.Read(func(fd uintptr) bool {
		var info siginfoChild
		_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_PIDFD, fd, uintptr(unsafe.Pointer(&info)),
			unix.WEXITED|unix.WNOHANG, 0, 0)
		switch {
		case e == unix.EINTR || e == unix.EAGAIN:
			return false
		case e != 0:
			return true // ECHILD: reap took it
		case info.Pid == 0:
			return false // not exited yet: wait for the poller
		}
		ws, ok = info.waitStatus(), true
		return true
	})
	if err != nil {
		return 0, false
	}
	return ws, ok
}

// siginfoChild is the kernel's siginfo_t as waitid(2) fills it for a
// child (64-bit layout: three ints, padding, then the SIGCHLD fields).
type siginfoChild struct {
	Signo  int32
	Errno  int32
	Code   int32
	_      int32
	Pid    int32
	UID    uint32
	Status int32
	_      [128 - 28]byte
}

// si_code values of a child's exit (siginfo.h).
const (
	cldExited = 1 // else 2, killed
	cldDumped = 3
)

// waitStatus encodes info as wait4(2) would.
func (info *siginfoChild) waitStatus() unix.WaitStatus {
	switch info.Code {
	case cldExited:
		return unix.WaitStatus(info.Status&0xff) << 8
	case cldDumped:
		return unix.WaitStatus(info.Status&0x7f) | 0x80
	default: // killed
		return unix.WaitStatus(info.Status & 0x7f)
	}
}

func (a *boxAgent) finish(se *session, ws unix.WaitStatus) {
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	msg := a.stopping()
	if msg == "" && a.count() == 0 {
		msg = a.leftBehind()
	}
	_ = se.conn.Send(agent.Reply{Type: agent.TypeExit, Code: code, Message: msg})
	trace.Mark("agent: exit sent")
	se.conn.Close()
	a.mu.Lock()
	rearmBoxHardening()
	a.mu.Unlock()
}

// leftBehind says, when the last session ended while other processes of
// the box still run (background jobs, daemons), that they will be stopped
// with the box at the end of its grace period; "" when none are left.
func (a *boxAgent) leftBehind() string {
	if !hasChildren() {
		return ""
	}
	n := runningProcesses("/proc", os.Getpid())
	if n == 0 {
		return ""
	}
	grace := a.spec.GraceSeconds
	if grace <= 0 {
		grace = 10
	}
	return fmt.Sprintf("%d process(es) still running in box %s; the box stops %d s after its last session ends, and them with it (hint: devbox shell %s keeps it up; devbox stop %s stops it now)",
		n, a.spec.Name, grace, a.spec.Name, a.spec.Name)
}

// hasChildren reports whether the agent has a child, running or not yet
// reaped (waitid without reaping). The agent is PID 1 of the box: every
// other process of the box descends from one of its children (orphans
// are reparented to it), so without a child nothing else runs, and the
// scan of /proc on the exit reply's path is skipped.
func hasChildren() bool {
	var info siginfoChild
	_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_ALL, 0, uintptr(unsafe.Pointer(&info)),
		unix.WEXITED|unix.WNOHANG|unix.WNOWAIT|unix.WALL, 0, 0)
	return e != unix.ECHILD
}

// runningProcesses counts the processes under proc other than self that
// are not zombies.
func runningProcesses(proc string, self int) int {
	ents, _ := os.ReadDir(proc)
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(proc + "/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) S ...": the state follows the last ')'.
		st := string(b)
		if i := strings.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) && (st[i+2] == 'Z' || st[i+2] == 'X') {
			continue
		}
		n++
	}
	return n
}

// terminate ends every session: SIGTERM, then SIGKILL after 3 s. The rest
// of the box dies with its PID namespace when the init returns.
func (a *boxAgent) terminate() {
	a.mu.Lock()
	for pid := range a.sessions {
		_ = unix.Kill(-pid, unix.SIGTERM)
		_ = unix.Kill(pid, unix.SIGTERM)
	}
	a.mu.Unlock()
	deadline := time.Now().Add(3 * time.Second)
	for a.count() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		a.reap()
	}
	a.mu.Lock()
	for pid, se := range a.sessions {
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = se.conn.Send(agent.Reply{Type: agent.TypeExit, Code: 128 + int(unix.SIGKILL),
			Message: a.why + " (the session did not end on SIGTERM within 3 s and was killed)"})
		se.conn.Close()
	}
	a.mu.Unlock()
}

// peerError says why a connection is not served: only devbox on the host,
// running as the box's owner, may use the agent. A peer in the box's PID
// namespace shows its pid there; one outside it (the host CLI) shows 0.
func (a *boxAgent) peerError(c *agent.Conn) error {
	cred, err := c.PeerCred()
	if err != nil {
		return fmt.Errorf("reading the caller's credentials: %w", err)
	}
	return peerAllowed(cred.Pid, cred.Uid, a.ownerUID())
}

// peerAllowed: a peer outside the box's PID namespace (pid 0 as the agent
// sees it) that runs as the box's owner.
func peerAllowed(pid int32, uid, owner uint32) error {
	if pid != 0 {
		return fmt.Errorf("sessions are started by devbox on the host, not from inside the box (pid %d)", pid)
	}
	if uid != owner {
		return fmt.Errorf("uid %d may not use this box (it belongs to uid %d)", uid, owner)
	}
	return nil
}

// ownerUID is the box owner's uid in the box's user namespace: the
// account's (keep-id), or 0 when root inside is the user (single id).
func (a *boxAgent) ownerUID() uint32 {
	if acct := a.spec.Account; acct != nil {
		return uint32(acct.UID)
	}
	return 0
}

// handle serves one connection.
func (a *boxAgent) handle(c *agent.Conn) {
	var req agent.Request
	files, err := c.Receive(&req)
	trace.Mark("agent: request")
	if err != nil {
		c.Close()
		return
	}
	// The request is read first so that the refusal reaches the peer.
	if err := a.peerError(c); err != nil {
		for _, f := range files {
			f.Close()
		}
		a.fail(c, 125, err)
		return
	}
	switch req.Type {
	case agent.TypeStatus:
		_ = c.Send(agent.Reply{Type: agent.TypeOK, Sessions: a.count(), Started: a.started.Unix()})
		c.Close()
	case agent.TypeStop:
		_ = c.Send(agent.Reply{Type: agent.TypeOK, Sessions: a.count()})
		c.Close()
		why := "devbox stop"
		if r := strings.Map(func(c rune) rune {
			if c < 0x20 || c == 0x7f {
				return -1
			}
			return c
		}, req.Reason); r != "" && len(r) <= 64 {
			why = r
		}
		a.requestStop("box " + a.spec.Name + " stopped (" + why + ")")
	case agent.TypeExec:
		a.exec(c, req, files)
	default:
		_ = c.Send(agent.Reply{Type: agent.TypeError, Code: 125, Message: "unknown request " + strconv.Quote(req.Type)})
		c.Close()
	}
	for _, f := range files {
		f.Close()
	}
}

func (a *boxAgent) fail(c *agent.Conn, code int, err error) {
	_ = c.Send(agent.Reply{Type: agent.TypeError, Code: code, Message: err.Error()})
	c.Close()
}

func (a *boxAgent) exec(c *agent.Conn, req agent.Request, files []*os.File) {
	if !req.Terminal && len(files) != 3 {
		a.fail(c, 125, fmt.Errorf("a session without a terminal needs stdin, stdout and stderr"))
		return
	}
	if why := a.stopping(); why != "" {
		a.fail(c, 125, fmt.Errorf("box %s is stopping (hint: run the command again once devbox stop %s returned)", a.spec.Name, a.spec.Name))
		return
	}
	if req.UID != int(a.ownerUID()) && req.UID != 0 {
		a.fail(c, 125, fmt.Errorf("a session runs as the box's owner or as root, not uid %d", req.UID))
		return
	}
	u, err := a.sessionUser(req)
	if err != nil {
		a.fail(c, 125, err)
		return
	}
	args := req.Args
	login := len(args) == 0
	if login {
		want := ""
		if acct := a.spec.Account; acct != nil && int(u.UID) == acct.UID {
			want = acct.Shell
		}
		args = []string{loginShell(want)}
	}
	pathList, ok := lookupEnv(req.Env, "PATH")
	if !ok {
		pathList = defaultPath
	}
	file, err := lookPath(args[0], pathList)
	if err != nil {
		a.fail(c, 127, err)
		return
	}
	argv := append([]string{}, args...)
	if login {
		argv[0] = "-" + path.Base(args[0]) // a login shell, as login(1) starts it
	}
	pidfd := -1
	cmd := &exec.Cmd{
		Path: file,
		Args: argv,
		Env:  req.Env,
		Dir:  sessionDir(req.Cwd, req.Env),
		SysProcAttr: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups, NoSetGroups: !a.ids.Setgroups},
			Setsid:     true,
			PidFD:      &pidfd, // ours; the os.Process keeps a duplicate
		},
	}
	var tty *pty
	if req.Terminal {
		if tty, err = openPTY(u.UID); err != nil {
			a.fail(c, 125, err)
			return
		}
		if req.Rows > 0 && req.Cols > 0 {
			_ = unix.IoctlSetWinsize(int(tty.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: req.Rows, Col: req.Cols})
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty.slave, tty.slave, tty.slave
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[1], files[2]
	}
	a.mu.Lock()
	err = startCommand(cmd)
	trace.Mark("agent: forked")
	if err != nil {
		rearmBoxHardening()
		a.mu.Unlock()
		if pidfd >= 0 { // syscall closes it when the exec fails; in case another step did
			unix.Close(pidfd)
		}
		if tty != nil {
			tty.master.Close()
			tty.slave.Close()
		}
		code, e := execError(args[0], file, err)
		a.fail(c, code, e)
		return
	}
	se := &session{pid: cmd.Process.Pid, conn: c}
	_ = cmd.Process.Release() // its pidfd: the session is reaped here, not by os/exec
	ws, reaped := a.early[se.pid]
	if reaped {
		delete(a.early, se.pid)
	} else {
		a.sessions[se.pid] = se
	}
	a.mu.Unlock()
	a.poke()
	var passed []*os.File
	if tty != nil {
		tty.slave.Close()
		passed = []*os.File{tty.master}
	}
	_ = c.Send(agent.Reply{Type: agent.TypeStarted, PID: se.pid}, passed...)
	trace.Mark("agent: started sent")
	if tty != nil {
		tty.master.Close()
	}
	if reaped {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		a.finish(se, ws)
		return
	}
	if pidfd >= 0 {
		go a.awaitExit(se, pidfd)
	}
	// Further requests on this connection are signals; a closed
	// connection hangs the session up.
	for {
		var r agent.Request
		fs, err := c.Receive(&r)
		for _, f := range fs {
			f.Close()
		}
		a.mu.Lock()
		alive := a.sessions[se.pid] == se
		a.mu.Unlock()
		if !alive {
			return
		}
		if err != nil {
			_ = unix.Kill(-se.pid, unix.SIGHUP)
			_ = unix.Kill(-se.pid, unix.SIGCONT)
			return
		}
		if r.Type == agent.TypeSignal && r.Signal > 0 && r.Signal < 65 {
			_ = unix.Kill(-se.pid, unix.Signal(r.Signal))
		}
	}
}

// sessionUser resolves the request's ids against the box's accounts
// (read again only when /etc/passwd or /etc/group changed: boxAccounts).
func (a *boxAgent) sessionUser(req agent.Request) (User, error) {
	ids := a.ids
	u, err := a.accounts.resolve(req.UID)
	if err != nil {
		return User{}, err
	}
	u.GID = uint32(req.GID)
	if !ids.UIDs.Contains(u.UID) || !ids.GIDs.Contains(u.GID) {
		return User{}, fmt.Errorf("uid %d / gid %d is not mapped in the box (hint: %s)", req.UID, req.GID, mappedHint(ids.UIDs, "uids"))
	}
	u.Groups = ids.GIDs.Mapped(u.Groups)
	return u, nil
}

// readAll reads the file at path with plain system calls: open, read
// until the end, close. os.ReadFile takes three times as many (the
// runtime poller's registration refused, file status flags read and
// set, a stat), each on a session's way to its fork. The box's files are
// input: a FIFO does not block the open (O_NONBLOCK; anything but a
// regular file is refused), and at most maxAccountFile bytes are read.
func readAll(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &os.PathError{Op: "read", Path: path, Err: unix.EINVAL}
	}
	b := make([]byte, 0, 4096)
	for {
		if len(b) >= maxAccountFile {
			return nil, &os.PathError{Op: "read", Path: path, Err: unix.EFBIG}
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// maxAccountFile bounds what readAll reads of the box's /etc/passwd and
// /etc/group.
const maxAccountFile = 16 << 20

// loginShell returns want when the box has it, else bash, else sh.
func loginShell(want string) string {
	for _, sh := range []string{want, "/bin/bash", "/usr/bin/bash", "/bin/sh"} {
		if sh == "" {
			continue
		}
		if fi, err := os.Stat(sh); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return sh
		}
	}
	return "/bin/sh"
}

// sessionDir is the caller's directory when the box has it, else HOME,
// else /.
func sessionDir(cwd string, env []string) string {
	for _, d := range []string{cwd, func() string { h, _ := lookupEnv(env, "HOME"); return h }()} {
		if d == "" || !path.IsAbs(d) {
			continue
		}
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return "/"
}
