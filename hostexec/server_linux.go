package hostexec

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/devbox-dev/devbox/runtime/agent"
	"golang.org/x/sys/unix"
)

// nsID identifies a namespace.
type nsID struct{ dev, ino uint64 }

// nsOf returns namespace kind (pid, user) of process pid.
func nsOf(pid int, kind string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/"+kind, &st); err != nil {
		return nsID{}, err
	}
	return nsID{st.Dev, st.Ino}, nil
}

// boxNS are the namespaces a process of the box is in: the init's PID
// and user namespaces. A sandbox built in the box has its own user
// namespace, with or without a PID namespace of its own.
type boxNS struct{ pid, user nsID }

func nsOfProcess(pid int) (boxNS, error) {
	p, err := nsOf(pid, "pid")
	if err != nil {
		return boxNS{}, err
	}
	u, err := nsOf(pid, "user")
	return boxNS{p, u}, err
}

// server is the helper of one box.
type server struct {
	uid   uint32
	boxNS boxNS
	home  string

	mu      sync.Mutex
	running map[int]bool // process groups of running commands
	closing bool
}

// ServeMain is the helper's stage: argv[1] is the box init's pid, fd 3
// the listening socket, fd 4 a pidfd of the init. It serves until the
// init exits (or SIGTERM), then hangs up the commands still running.
func ServeMain() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "devbox-hostexec: no box init pid")
		return 125
	}
	initPID, err := strconv.Atoi(os.Args[1])
	if err != nil || initPID <= 1 {
		fmt.Fprintln(os.Stderr, "devbox-hostexec: bad init pid", os.Args[1])
		return 125
	}
	lf, pidfd := os.NewFile(3, "listener"), 4
	ns, err := nsOfProcess(initPID)
	// The pidfd still names a live process: initPID was not reused
	// between the clone and the read above.
	if err == nil {
		err = unix.PidfdSendSignal(pidfd, 0, nil, 0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "devbox-hostexec: the box init %d: %v\n", initPID, err)
		return 125
	}
	l, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devbox-hostexec:", err)
		return 125
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		fmt.Fprintln(os.Stderr, "devbox-hostexec: fd 3 is not a unix socket")
		return 125
	}
	ul.SetUnlinkOnClose(false)
	home, _ := os.UserHomeDir()
	s := &server{uid: uint32(os.Getuid()), boxNS: ns, home: home, running: map[int]bool{}}
	end := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
				break
			}
			if fds[0].Revents != 0 {
				break
			}
		}
		close(end)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		select {
		case <-end:
		case <-sigs:
		}
		s.shutdown()
		ul.Close()
	}()
	for {
		c, err := ul.AcceptUnix()
		if err != nil {
			return 0
		}
		go s.handle(agent.NewConn(c))
	}
}

func (s *server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for pg := range s.running {
		_ = unix.Kill(-pg, unix.SIGHUP)
	}
}

// peerError says why the connection's peer may not use the channel.
func (s *server) peerError(c *agent.Conn) error {
	cred, err := c.PeerCred()
	if err != nil {
		return err
	}
	if cred.Uid != s.uid {
		return fmt.Errorf("uid %d is not the box owner's", cred.Uid)
	}
	if cred.Pid <= 0 {
		return errors.New("the peer's pid is unknown")
	}
	// The pid is a number recorded at connect: once that process is gone
	// another may have it. A pidfd of the peer that still answers after
	// /proc was read says the number was the peer's all along.
	pidfd, perr := c.PeerPidfd()
	if perr != nil && !errors.Is(perr, unix.ENOPROTOOPT) {
		return errors.New("the peer is gone")
	}
	if pidfd >= 0 {
		defer unix.Close(pidfd)
	}
	ns, err := nsOfProcess(int(cred.Pid))
	if err == nil && pidfd >= 0 {
		err = unix.PidfdSendSignal(pidfd, 0, nil, 0)
	}
	if err != nil || ns.pid != s.boxNS.pid {
		return errors.New("the peer is not a process of the box")
	}
	if ns.user != s.boxNS.user {
		return errors.New("the peer is in a user namespace of its own (a sandbox in the box)")
	}
	return nil
}

func (s *server) fail(c *agent.Conn, code int, err error) {
	_ = c.Send(agent.Reply{Type: agent.TypeError, Code: code, Message: err.Error()})
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func (s *server) handle(c *agent.Conn) {
	defer c.Close()
	// The request is read before the peer is judged, so that a refusal
	// reaches the client instead of a reset connection; a refused
	// request is only closed.
	var req agent.Request
	files, err := c.Receive(&req)
	defer closeAll(files)
	if err != nil {
		return
	}
	if err := s.peerError(c); err != nil {
		s.fail(c, 125, fmt.Errorf("devbox-host: refused: %w", err))
		return
	}
	if req.Type != agent.TypeExec {
		s.fail(c, 125, fmt.Errorf("devbox-host: unknown request %q", req.Type))
		return
	}
	argv := req.Args
	if len(argv) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		argv = []string{sh}
	}
	for _, a := range argv {
		if containsNUL(a) {
			s.fail(c, 125, errors.New("devbox-host: an argument has a NUL byte"))
			return
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		code := 127
		if !errors.Is(err, exec.ErrNotFound) {
			code = 126
		}
		s.fail(c, code, fmt.Errorf("devbox-host: %s: command not found on the host", argv[0]))
		return
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: Env(os.Environ(), req.Env),
		Dir: Dir(req.Cwd, s.home, isDir), SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	var master, slave *os.File
	if req.Terminal {
		if master, slave, err = openPTY(req.Rows, req.Cols); err != nil {
			s.fail(c, 125, fmt.Errorf("devbox-host: %w", err))
			return
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	} else {
		if len(files) != 3 {
			s.fail(c, 125, errors.New("devbox-host: stdin, stdout and stderr are needed"))
			return
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[1], files[2]
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		if master != nil {
			master.Close()
			slave.Close()
		}
		s.fail(c, 125, errors.New("devbox-host: the box is stopping"))
		return
	}
	err = cmd.Start()
	if err == nil {
		s.running[cmd.Process.Pid] = true
	}
	s.mu.Unlock()
	if slave != nil {
		slave.Close()
	}
	closeAll(files)
	files = nil
	if err != nil {
		if master != nil {
			master.Close()
		}
		s.fail(c, 126, fmt.Errorf("devbox-host: %w", err))
		return
	}
	pid := cmd.Process.Pid
	var reply []*os.File
	if master != nil {
		reply = append(reply, master)
	}
	err = c.Send(agent.Reply{Type: agent.TypeStarted, PID: pid}, reply...)
	if master != nil {
		// The client's copy is the terminal's only master from here: when
		// the client goes, the command's terminal hangs up.
		master.Close()
	}
	if err != nil {
		s.signal(pid, unix.SIGHUP)
	}
	go func() {
		for {
			var r agent.Request
			fs, err := c.Receive(&r)
			closeAll(fs)
			if err != nil {
				// The caller is gone: hang its command up, as a closed
				// terminal would.
				s.signal(pid, unix.SIGHUP)
				return
			}
			if r.Type == agent.TypeSignal && agent.Forwardable(unix.Signal(r.Signal)) {
				s.signal(pid, unix.Signal(r.Signal))
			}
		}
	}()
	_ = cmd.Wait()
	s.mu.Lock()
	delete(s.running, pid)
	s.mu.Unlock()
	code := 0
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			code = 128 + int(ws.Signal())
		}
	}
	_ = c.Send(agent.Reply{Type: agent.TypeExit, Code: code})
}

// signal signals the process group of a command that still runs.
func (s *server) signal(pid int, sig unix.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[pid] {
		_ = unix.Kill(-pid, sig)
	}
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// openPTY allocates a pty on the host, sized rows×cols.
func openPTY(rows, cols uint16) (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("allocating a terminal: %w", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("allocating a terminal: %w", err)
	}
	sfd, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if e != 0 {
		m.Close()
		return nil, nil, fmt.Errorf("allocating a terminal: %w", e)
	}
	if rows > 0 && cols > 0 {
		_ = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
	return m, os.NewFile(sfd, "pty"), nil
}
