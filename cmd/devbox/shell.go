package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/internal/rundir"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/rootless/idmap"
	"github.com/devbox-dev/devbox/runtime/session"
	"golang.org/x/term"
)

// sessionArgs is a `devbox shell` or `devbox exec` command line the front
// can serve.
type sessionArgs struct {
	store      string // --store before the verb
	name       string
	args       []string
	root       bool
	tty, noTTY bool
}

// parseSession accepts `[--store DIR] shell|enter NAME [FLAGS] [--] [CMD…]`
// and `[--store DIR] exec NAME [FLAGS] [--] CMD…`, where FLAGS are
// --root, -t/--tty, -T/--no-tty (and exec's -i/--interactive), before or
// after NAME, as the CLI reads them (cmdutil.ParseAfterName): after NAME,
// the first argument that is not a flag, or the one after "--", starts
// the command. Anything else (another flag, --help, a create flag, no
// NAME) is the CLI's.
func parseSession(args []string) (sessionArgs, bool) {
	var a sessionArgs
	for len(args) > 0 && strings.HasPrefix(args[0], "--store") {
		switch v, ok := strings.CutPrefix(args[0], "--store="); {
		case ok:
			a.store, args = v, args[1:]
		case args[0] == "--store" && len(args) > 1:
			a.store, args = args[1], args[2:]
		default:
			return a, false
		}
	}
	if len(args) == 0 {
		return a, false
	}
	verb := args[0]
	if verb != "shell" && verb != "enter" && verb != "exec" {
		return a, false
	}
	args = args[1:]
	flags := func() bool { // devbox's flags, up to NAME, the command or "--"
		for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "--" {
			switch args[0] {
			case "--root":
				a.root = true
			case "-t", "--tty":
				a.tty = true
			case "-T", "--no-tty":
				a.noTTY = true
			case "-i", "--interactive", "-it", "-ti":
				if verb != "exec" {
					return false
				}
				a.tty = a.tty || args[0] == "-it" || args[0] == "-ti"
			default:
				return false
			}
			args = args[1:]
		}
		return true
	}
	if !flags() || len(args) == 0 || args[0] == "--" {
		return a, false
	}
	a.name, args = args[0], args[1:]
	if !flags() {
		return a, false
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	a.args = args
	if verb == "exec" && (len(a.args) == 0 || a.tty && a.noTTY) {
		return a, false // the CLI's usage errors
	}
	return a, true
}

// sessionFast serves `devbox shell` and `devbox exec` for a running box:
// the configuration and the caller's id mapping are read as the CLI reads
// them (cmd/config, rootless/idmap), the box through the session ticket
// the CLI left at its last session (runtime/session), and the request is
// the CLI's. The CLI runs the command instead — it is not handled — when
// anything is not so: another form of the command, a configuration error,
// no ticket or record files changed since, provisioning due, a box whose
// agent does not answer (it starts it).
func sessionFast(argv []string) (int, bool) {
	a, ok := parseSession(argv[1:])
	if !ok {
		return 0, false
	}
	if os.Getenv("DEVBOX_LOG_LEVEL") != "" {
		return handOff("DEVBOX_LOG_LEVEL is set")
	}
	id := readIdentity()
	defer id.wait() // nothing of it outlives the front's decision
	cfg, err := config.Load(config.Path())
	if err != nil {
		return handOff(err.Error())
	}
	store, err := cfg.StoreRoot(a.store)
	if err != nil {
		return handOff(err.Error())
	}
	base, err := rundir.Base()
	if err != nil {
		return handOff(err.Error())
	}
	b, err := session.Lookup(base, store, a.name)
	if err != nil {
		return handOff(err.Error())
	}
	m, acct, err := id.wait().get()
	if err != nil {
		return handOff(err.Error())
	}
	if session.NeedsProvision(b, m.Single(), cfg.Provision.Auto) {
		return handOff("provisioning is due")
	}
	// The request is ready before the connection: the agent, woken by
	// the connection, finds it there instead of sleeping once more until
	// it comes.
	terminal := (term.IsTerminal(0) && term.IsTerminal(1) && !a.noTTY) || a.tty
	req := session.NewRequest(b, acct, m.Single(),
		session.Options{Args: a.args, Root: a.root, Terminal: terminal})
	c, err := session.Dial(rundir.AgentSocket(base, b.ID), b.Name)
	if err != nil {
		return handOff(err.Error())
	}
	defer c.Close()
	trace.Mark("front: session")
	if m.Warning != "" {
		fmt.Fprintln(os.Stderr, "devbox: warning:", m.Warning)
	}
	code, err := session.Run(c, b.Name, req, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devbox: "+err.Error())
		return 125, true // cmdutil.ExitFailure, as the CLI's
	}
	return code, true
}

// identity is the caller's id mapping and account (rootless/idmap,
// session.HostAccount), read in the background while the front reads the
// configuration and the session ticket: neither needs the other, and the
// Go runtime has a second processor for it where the machine has a
// second CPU.
type identity struct {
	done chan struct{}
	m    idmap.Mapping
	acct session.Account
	err  error
}

func readIdentity() *identity {
	id := &identity{done: make(chan struct{})}
	go func() {
		defer close(id.done)
		if id.m, id.err = idmap.Detect(); id.err == nil {
			id.acct = session.HostAccount(id.m.UID, id.m.GID)
		}
	}()
	return id
}

// wait waits until the identity is read.
func (id *identity) wait() *identity {
	<-id.done
	return id
}

func (id *identity) get() (idmap.Mapping, session.Account, error) { return id.m, id.acct, id.err }

// handOff leaves the command to the CLI, saying why in the trace
// (DEVBOX_TRACE=1; the tests read it).
func handOff(why string) (int, bool) {
	trace.Mark("front: to the CLI: " + why)
	return 0, false
}
