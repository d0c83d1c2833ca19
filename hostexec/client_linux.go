package hostexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/devbox-dev/devbox/runtime/agent"
	"github.com/devbox-dev/devbox/runtime/session"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

const usage = `usage: devbox-host [--] [COMMAND [ARG...]]
Runs COMMAND on the host, as you, from inside a dev box: your working
directory when it is under your home, your terminal or stdio, its exit code.
Without a command, your shell on the host. Only dev boxes have the channel.
`

// ClientMain is devbox-host (os.Args[0] devbox-host) or its xdg-open shim
// (os.Args[0] xdg-open, which runs the host's xdg-open).
func ClientMain() int {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == XdgOpenName {
		if os.Getenv(XdgOpenEnv) == "box" {
			boxXdgOpen() // returns only when the box has none
		}
		args = append([]string{"xdg-open"}, args...)
	} else if len(args) > 0 {
		switch args[0] {
		case "--":
			args = args[1:]
		case "-h", "--help":
			fmt.Print(usage)
			return 0
		}
	}
	sock := os.Getenv(SocketEnv)
	if sock == "" {
		sock = BoxSocket
	}
	c, err := agent.DialAny(sock)
	if err != nil {
		if filepath.Base(os.Args[0]) == XdgOpenName {
			boxXdgOpen() // no channel: the box's own, when it has one
		}
		fmt.Fprintf(os.Stderr, "devbox-host: no channel to the host here (%v): only dev boxes have one (devbox shell NAME with your own home)\n", err)
		return 125
	}
	defer c.Close()
	code, err := run(c, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devbox-host: %v\n", err)
		return 125
	}
	return code
}

// boxXdgOpen executes the box's own xdg-open, if it has one.
func boxXdgOpen() {
	for _, p := range []string{"/usr/bin/xdg-open", "/bin/xdg-open"} {
		if _, err := os.Stat(p); err == nil {
			_ = syscall.Exec(p, append([]string{p}, os.Args[1:]...), os.Environ())
		}
	}
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func run(c *agent.Conn, args []string) (int, error) {
	cwd, _ := os.Getwd()
	tty := isTerminal(os.Stdin) && isTerminal(os.Stdout)
	req := agent.Request{Type: agent.TypeExec, Args: args, Env: os.Environ(), Cwd: cwd, Terminal: tty}
	if tty {
		if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
			req.Rows, req.Cols = ws.Row, ws.Col
		}
	}
	// Only the passed variables cross; the host side filters again.
	var env []string
	for _, kv := range req.Env {
		if passed(kv) {
			env = append(env, kv)
		}
	}
	req.Env = env
	var files []*os.File
	if !tty {
		files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	if err := c.Send(req, files...); err != nil {
		return 0, err
	}
	var rep agent.Reply
	got, err := c.Receive(&rep)
	if err != nil {
		return 0, err
	}
	switch rep.Type {
	case agent.TypeError:
		closeAll(got)
		fmt.Fprintln(os.Stderr, rep.Message)
		return rep.Code, nil
	case agent.TypeStarted:
	default:
		closeAll(got)
		return 0, fmt.Errorf("the host answered %q", rep.Type)
	}
	var master *os.File
	if tty {
		if len(got) != 1 {
			closeAll(got)
			return 0, errors.New("the host sent no terminal")
		}
		master = got[0]
		defer master.Close()
	}
	r := session.Relay(c, master, tty, agent.Reply{Type: agent.TypeExit, Code: 128 + int(syscall.SIGHUP)})
	return r.Code, nil
}
