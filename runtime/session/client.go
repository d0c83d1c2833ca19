package session

import (
	"errors"
	"fmt"
	"github.com/devbox-dev/devbox/internal/termsafe"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/boxstdio"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/runtime/agent"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ErrNotRunning says the box's agent does not answer: the box is stopped
// (or its socket is left from one that died).
var ErrNotRunning = errors.New("box not running")

// Options say what to run in a box.
type Options struct {
	Args     []string // empty: the user's login shell
	Root     bool     // as the box's root (shell --root)
	Terminal bool     // a pty of the box's
}

// NewRequest is the exec request for a session in box b of the caller
// acct: in single-ID mode (single) or with o.Root the session runs as the
// box's root. The caller's environment, working directory and terminal
// size are read here.
func NewRequest(b Box, acct Account, single bool, o Options) agent.Request {
	uid, gid := acct.UID, acct.GID
	if o.Root || single {
		uid, gid = 0, 0
	}
	cwd, _ := os.Getwd()
	req := agent.Request{
		Type:     agent.TypeExec,
		Args:     o.Args,
		Env:      Env(b, acct, os.Environ(), uid == 0),
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
	return req
}

// Dial connects to the agent listening on socket (in blocking mode: a
// session's client waits for its replies and nothing else); ErrNotRunning
// when nobody does.
func Dial(socket, name string) (*agent.Conn, error) {
	c, err := agent.DialBlocking(socket)
	if err != nil {
		if agent.IsNotRunning(err) {
			return nil, ErrNotRunning
		}
		return nil, fmt.Errorf("connecting to box %s: %w", name, err)
	}
	return c, nil
}

// Run starts req on connection c to box name's agent, with this
// process's stdin, stdout and stderr (a terminal among them relayed
// through a pipe) or, for a terminal session, the box's pty, and relays
// signals until the session exits. It returns the session's exit code; a
// message of the box (why the session ended, an error starting it) is
// printed on errOut as one line.
func Run(c *agent.Conn, name string, req agent.Request, errOut io.Writer) (int, error) {
	var files []*os.File
	var stdio *boxstdio.Relay
	var err error
	if !req.Terminal {
		if stdio, err = newRelay(os.Stdin, os.Stdout, os.Stderr); err != nil {
			return 0, fmt.Errorf("starting a session in box %s: %w", name, err)
		}
		files = stdio.Files
	}
	// The signals are caught from here on, registered while the box
	// starts the command (each registration is a round trip to the Go
	// runtime's signal thread; the front has nothing else to do until the
	// box answers); what arrives before the session started is passed on
	// once it has.
	w := watchSignals(req.Terminal)
	defer w.stop()
	trace.Mark("session: request")
	err = c.Send(req, files...)
	if stdio != nil {
		stdio.Sent()
	}
	if err != nil {
		return 0, fmt.Errorf("starting a session in box %s: %w", name, err)
	}
	var rep agent.Reply
	got, err := c.Receive(&rep)
	if err != nil {
		return 0, fmt.Errorf("starting a session in box %s: %w", name, err)
	}
	trace.Mark("session: " + rep.Type)
	switch rep.Type {
	case agent.TypeError:
		fmt.Fprintf(errOut, "devbox: %s\n", termsafe.Line(rep.Message))
		return rep.Code, nil
	case agent.TypeExit:
		if stdio != nil {
			stdio.Drain(200 * time.Millisecond)
		}
		ended(errOut, rep)
		return rep.Code, nil
	case agent.TypeStarted:
	default:
		return 0, fmt.Errorf("box %s answered %q", name, rep.Type)
	}
	var master *os.File
	if req.Terminal {
		if len(got) != 1 {
			return 0, errors.New("the box sent no terminal")
		}
		master = got[0]
		defer master.Close()
	}

	r := relayStarted(c, master, req.Terminal, agent.Reply{Type: agent.TypeExit, Code: 128 + int(syscall.SIGHUP),
		Message: "box " + name + " went away (its init exited or was killed); the session ended with it"}, w.c)
	trace.Mark("session: exit")
	if stdio != nil {
		stdio.Drain(200 * time.Millisecond)
	}
	ended(errOut, r)
	return r.Code, nil
}

// Relay runs a started session on connection c until its exit reply:
// it passes this process's signals on (SIGINT too, unless terminal, when
// Ctrl-C is a byte for the session's terminal, and SIGWINCH resizes it)
// and, with a terminal master, puts this process's stdin in raw mode and
// copies between it and master. A connection that breaks before the exit
// reply gives gone. The devbox-host client (hostexec) uses it too.
func Relay(c *agent.Conn, master *os.File, terminal bool, gone agent.Reply) agent.Reply {
	w := &signalWatch{c: make(chan os.Signal, 16), ready: make(chan struct{})}
	signal.Notify(w.c, agent.SessionSignals(terminal)...)
	close(w.ready)
	defer w.stop()
	return relayStarted(c, master, terminal, gone, w.c)
}

// signalWatch is the signals a session client passes on, caught into c
// once ready is closed.
type signalWatch struct {
	c     chan os.Signal
	ready chan struct{}
}

// watchSignals starts catching the signals a session passes on
// (agent.SessionSignals), in the background.
func watchSignals(terminal bool) *signalWatch {
	w := &signalWatch{c: make(chan os.Signal, 16), ready: make(chan struct{})}
	go func() {
		signal.Notify(w.c, agent.SessionSignals(terminal)...)
		close(w.ready)
	}()
	return w
}

// stop stops catching the signals, in the background: each signal's
// registration is undone by a round trip to the Go runtime's signal
// thread (six of them), which held the exit reply back from a caller who
// exits right after. A signal caught meanwhile is not passed on: the
// session has ended.
func (w *signalWatch) stop() {
	go func() {
		<-w.ready
		signal.Stop(w.c)
	}()
}

// relayStarted is Relay with the signals already caught into sigs.
func relayStarted(c *agent.Conn, master *os.File, terminal bool, gone agent.Reply, sigs chan os.Signal) agent.Reply {
	var old *term.State
	if terminal {
		signal.Ignore(syscall.SIGINT) // Ctrl-C is a byte for the session's terminal
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			old = st
			defer term.Restore(int(os.Stdin.Fd()), old)
		}
	}
	exit := make(chan agent.Reply, 1)
	go func() {
		var r agent.Reply
		if _, err := c.Receive(&r); err != nil {
			r = gone
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
				if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil && master != nil {
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
			}
			if old != nil {
				// A message after the session starts on a line of its own.
				_ = term.Restore(int(os.Stdin.Fd()), old)
			}
			return r
		}
	}
}

// ended prints why a session ended when the box says (the box was
// stopped, or processes are left behind that the box stops at grace end):
// one line.
func ended(errOut io.Writer, r agent.Reply) {
	if r.Message != "" {
		fmt.Fprintf(errOut, "devbox: %s\n", termsafe.Line(r.Message))
	}
}
