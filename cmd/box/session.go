package box

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/runtime/agent"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// errNotRunning says the box's agent does not answer.
var errNotRunning = errors.New("box not running")

// sessionOpts say what to run in a box.
type sessionOpts struct {
	Args     []string // empty: the user's login shell
	Root     bool
	Terminal bool
}

// session runs one command in running box r and returns its exit code.
func (e *env) session(r *rbox.Record, o sessionOpts) (int, error) {
	acct := dbox.HostAccount(e.mgr.Mapping())
	uid, gid := acct.UID, acct.GID
	if o.Root || e.mgr.Mapping().Single() {
		uid, gid = 0, 0
	}
	cwd, _ := os.Getwd()
	req := agent.Request{
		Type:     agent.TypeExec,
		Args:     o.Args,
		Env:      rbox.SessionEnv(r, acct, os.Environ(), uid == 0),
		Cwd:      cwd,
		UID:      uid,
		GID:      gid,
		Terminal: o.Terminal,
	}
	if o.Terminal {
		if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
			req.Rows, req.Cols = ws.Row, ws.Col
		}
	}
	c, err := agent.Dial(e.bs.SocketPath(r.ID))
	if err != nil {
		if agent.IsNotRunning(err) {
			return 0, errNotRunning
		}
		return 0, fmt.Errorf("connecting to box %s: %w", r.Name, err)
	}
	defer c.Close()
	var files []*os.File
	var stdio *sessionStdio
	if !o.Terminal {
		if stdio, err = newSessionStdio(os.Stdin, os.Stdout, os.Stderr); err != nil {
			return 0, fmt.Errorf("starting a session in box %s: %w", r.Name, err)
		}
		files = stdio.files
	}
	err = c.Send(req, files...)
	if stdio != nil {
		stdio.sent()
	}
	if err != nil {
		return 0, fmt.Errorf("starting a session in box %s: %w", r.Name, err)
	}
	var rep agent.Reply
	got, err := c.Receive(&rep)
	if err != nil {
		return 0, fmt.Errorf("starting a session in box %s: %w", r.Name, err)
	}
	switch rep.Type {
	case agent.TypeError:
		fmt.Fprintf(e.f.IOStreams.ErrOut, "devbox: %s\n", rep.Message)
		return rep.Code, nil
	case agent.TypeExit:
		if stdio != nil {
			stdio.drain(200 * time.Millisecond)
		}
		e.sessionEnded(rep)
		return rep.Code, nil
	case agent.TypeStarted:
	default:
		return 0, fmt.Errorf("box %s answered %q", r.Name, rep.Type)
	}
	var master *os.File
	if o.Terminal {
		if len(got) != 1 {
			return 0, errors.New("the box sent no terminal")
		}
		master = got[0]
		defer master.Close()
	}

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, agent.SessionSignals(o.Terminal)...)
	defer signal.Stop(sigs)
	var old *term.State
	if o.Terminal {
		signal.Ignore(syscall.SIGINT) // Ctrl-C is a byte for the box's terminal
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			old = st
			defer term.Restore(int(os.Stdin.Fd()), old)
		}
	}
	exit := make(chan agent.Reply, 1)
	rn := r.Name
	go func() {
		var r agent.Reply
		if _, err := c.Receive(&r); err != nil {
			r = agent.Reply{Type: agent.TypeExit, Code: 128 + int(syscall.SIGHUP),
				Message: "box " + rn + " went away (its init exited or was killed); the session ended with it"}
		}
		exit <- r
	}()
	outDone := make(chan struct{})
	if master != nil {
		go func() { _, _ = io.Copy(master, os.Stdin) }()
		go func() {
			_, _ = io.Copy(os.Stdout, master)
			close(outDone)
		}()
	}
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGWINCH {
				if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
					_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
				}
				continue
			}
			_ = c.Send(agent.Request{Type: agent.TypeSignal, Signal: int(s.(syscall.Signal))})
		case r := <-exit:
			if master != nil {
				// The last output may still sit in the terminal.
				select {
				case <-outDone:
				case <-time.After(200 * time.Millisecond):
				}
				if old != nil {
					// The message starts on a line of its own.
					_ = term.Restore(int(os.Stdin.Fd()), old)
				}
			}
			if stdio != nil {
				stdio.drain(200 * time.Millisecond)
			}
			e.sessionEnded(r)
			return r.Code, nil
		}
	}
}

// sessionEnded prints why a session ended when the box says (the box was
// stopped, or processes are left behind that the box stops at grace end):
// one line on stderr.
func (e *env) sessionEnded(r agent.Reply) {
	if r.Message != "" {
		fmt.Fprintf(e.f.IOStreams.ErrOut, "devbox: %s\n", r.Message)
	}
}
