package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/devbox-dev/devbox/internal/configpath"
	"github.com/devbox-dev/devbox/internal/rundir"
	"github.com/devbox-dev/devbox/internal/trace"
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
// what the CLI last read of the configuration and the caller's identity
// (the caller record), and the box through the session ticket the CLI
// left at its last session (runtime/session), each only while the files
// they came from are exactly as the CLI read them; the request is the
// CLI's. The CLI runs the command instead — it is not handled — when
// anything is not so: another form of the command, no caller record or
// ticket or a file changed since, provisioning due, a box whose agent
// does not answer (it starts it).
func sessionFast(argv []string) (int, bool) {
	a, ok := parseSession(argv[1:])
	if !ok {
		return 0, false
	}
	if os.Getenv("DEVBOX_LOG_LEVEL") != "" {
		return handOff("DEVBOX_LOG_LEVEL is set")
	}
	base, err := rundir.Base()
	if err != nil {
		return handOff(err.Error())
	}
	who, err := session.Recall(base, configpath.Path())
	if err != nil {
		return handOff(err.Error())
	}
	store, err := configpath.StoreRoot(a.store, who.Config.StoreRoot)
	if err != nil {
		return handOff(err.Error())
	}
	b, err := session.Lookup(base, store, a.name)
	if err != nil {
		return handOff(err.Error())
	}
	id := who.Ident
	if session.NeedsProvision(b, id.Single, who.Config.ProvisionAuto) {
		return handOff("provisioning is due")
	}
	// The request is ready before the connection: the agent, woken by
	// the connection, finds it there instead of sleeping once more until
	// it comes.
	terminal := (term.IsTerminal(0) && term.IsTerminal(1) && !a.noTTY) || a.tty
	req := session.NewRequest(b, id.Account, id.Single,
		session.Options{Args: a.args, Root: a.root, Terminal: terminal})
	c, err := session.Dial(rundir.AgentSocket(base, b.ID), b.Name)
	if err != nil {
		return handOff(err.Error())
	}
	defer c.Close()
	trace.Mark("front: session")
	if id.Warning != "" {
		fmt.Fprintln(os.Stderr, "devbox: warning:", id.Warning)
	}
	code, err := session.Run(c, b.Name, req, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devbox: "+err.Error())
		return 125, true // cmdutil.ExitFailure, as the CLI's
	}
	return code, true
}

// handOff leaves the command to the CLI, saying why in the trace
// (DEVBOX_TRACE=1; the tests read it).
func handOff(why string) (int, bool) {
	trace.Mark("front: to the CLI: " + why)
	return 0, false
}
