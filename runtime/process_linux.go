package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/runtime/agent"
	"golang.org/x/sys/unix"
)

// defaultPath is searched when the command's environment has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// forwarded are the signals the init passes on to the command. SIGWINCH
// resizes the pty instead when there is one.
var forwarded = append(slices.Clone(agent.Signals), unix.SIGWINCH)

// earlySignals delivers the channel of the forwarded signals when
// prepareSignals registered them ahead of time.
var earlySignals chan chan os.Signal

// prepareSignals registers the forwarded signals on another goroutine,
// which runs while the init waits for its spec and id maps: the first
// signal.Notify of a process starts the runtime's signal-mask thread, and
// each signal it enables waits for that thread (~0.4 ms in all here, on the
// way to the command otherwise). Signals that arrive before the command
// starts reach it once it has started, rather than being ignored by the
// init (PID 1 ignores signals it has no handler for).
func prepareSignals() {
	earlySignals = make(chan chan os.Signal, 1)
	go func() {
		c := make(chan os.Signal, 64)
		signal.Notify(c, forwarded...)
		earlySignals <- c
	}()
}

// commandSignals returns the channel the forwarded signals arrive on.
func commandSignals() chan os.Signal {
	if earlySignals != nil {
		c := <-earlySignals
		earlySignals = nil
		return c
	}
	c := make(chan os.Signal, 64)
	signal.Notify(c, forwarded...)
	return c
}

// runCommand starts the box's command as u and acts as PID 1 until it
// exits: it forwards signals, reaps every zombie, and with a terminal
// copies between the init's stdio and the box's pty. It returns the
// command's exit code.
func runCommand(s *Spec, u User, ids IDMaps) (int, error) {
	env := Environ(s.Env, u)
	name := s.Args[0]
	pathList, ok := lookupEnv(env, "PATH")
	if !ok {
		pathList = defaultPath
	}
	file, err := lookPath(name, pathList)
	if err != nil {
		return 127, err
	}
	sigs := commandSignals()
	// Not a deferred Stop: it waits for the runtime's signal loop to go
	// idle, a scheduling round (~0.3 ms) on the way to the exit code.
	defer func() { go signal.Stop(sigs) }()

	attr := &syscall.ProcAttr{
		Dir:   workDir(s.Cwd),
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups, NoSetGroups: !ids.Setgroups},
			// A session of its own: without a box pty the command's
			// stdio may be the caller's terminal, which must not be its
			// controlling terminal (TIOCSTI would type into the
			// caller's shell); with one, the pty becomes it below.
			Setsid: true,
		},
	}
	var tty *pty
	if s.Terminal {
		if tty, err = openPTY(u.UID); err != nil {
			return 125, err
		}
		defer tty.master.Close()
		fd := tty.slave.Fd()
		attr.Files = []uintptr{fd, fd, fd}
		attr.Sys.Setctty = true
		attr.Sys.Ctty = 0
		// Sized before the command starts, so it never sees 0x0.
		tty.resize()
	}
	// syscall.ForkExec rather than os/exec: the init reaps with wait4 and
	// needs none of os/exec's pidfd machinery, whose first use probes the
	// kernel with an extra child process.
	pid, err := forkExec(file, s.Args, attr)
	if tty != nil {
		tty.slave.Close()
	}
	if err != nil {
		return execError(name, file, err)
	}
	trace.Mark("init: command started")
	var copied chan struct{}
	if tty != nil {
		copied = tty.pump()
	}
	status := waitCommand(pid, sigs, tty)
	trace.Mark("init: command exited")
	if tty != nil {
		tty.drain(copied)
	}
	return status, nil
}

// waitCommand is the PID 1 loop: it reaps every child of the init, the
// orphans of the box included, until pid exits, and returns pid's exit
// code (128+N when signal N killed it). Meanwhile signals are forwarded to
// pid. A blocking wait wakes up the moment a child exits, without a detour
// through SIGCHLD or another goroutine.
func waitCommand(pid int, sigs <-chan os.Signal, tty *pty) int {
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == unix.SIGWINCH && tty != nil {
					tty.resize()
					continue
				}
				_ = unix.Kill(pid, sig.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case err == unix.EINTR:
		case err != nil:
			warn("waiting for the command: %v", err)
			return 125
		case p == pid && ws.Signaled():
			return 128 + int(ws.Signal())
		case p == pid:
			return ws.ExitStatus()
		}
	}
}

// lookPath finds name in the box as execvp would: a name with a slash is
// used as it is; otherwise the first executable file of that name in the
// PATH directories, or the first file of that name when none is
// executable (exec then fails with "permission denied").
func lookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if name == "" {
		return "", errors.New("empty command name")
	}
	first := ""
	for _, dir := range strings.Split(pathList, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		if fi.Mode()&0o111 != 0 {
			return p, nil
		}
		if first == "" {
			first = p
		}
	}
	if first != "" {
		return first, nil
	}
	return "", fmt.Errorf("%s: command not found", name)
}

// execError turns a failed start into the shell's exit codes: 127 when the
// file (or its interpreter) is missing, 126 when it cannot be executed.
func execError(name, file string, err error) (int, error) {
	switch {
	case errors.Is(err, unix.ENOENT):
		if _, serr := os.Stat(file); serr == nil {
			return 127, fmt.Errorf("%s: no such file or directory (hint: its interpreter or dynamic loader is missing in the image)", name)
		}
		if !strings.Contains(name, "/") {
			return 127, fmt.Errorf("%s: command not found", name)
		}
		return 127, fmt.Errorf("%s: no such file or directory", name)
	case errors.Is(err, unix.EACCES):
		return 126, fmt.Errorf("%s: permission denied", name)
	case errors.Is(err, unix.ENOEXEC):
		return 126, fmt.Errorf("%s: exec format error (hint: it is neither a binary for this machine nor a script with a #! line)", name)
	}
	return 125, fmt.Errorf("starting %s: %w", name, err)
}

// workDir returns the command's working directory: cwd when it exists in
// the box, "/" otherwise (with a warning).
func workDir(cwd string) string {
	if cwd == "" {
		return "/"
	}
	cwd = path.Join("/", cwd)
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		warn("working directory %s does not exist in the box: using /", cwd)
		return "/"
	}
	return cwd
}
