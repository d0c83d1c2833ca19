package agent

import (
	"os"
	"syscall"
)

// Signals are the signals passed on to what runs in a box: devbox run's to
// the box init, a session client's to the agent (TypeSignal), devbox-host's
// client's to its server. A terminal's resize (SIGWINCH) is handled apart.
var Signals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Forwardable reports whether sig is one of Signals: what a server
// accepts from a client.
func Forwardable(sig syscall.Signal) bool {
	for _, s := range Signals {
		if s == sig {
			return true
		}
	}
	return false
}

// SessionSignals are the signals a session client watches: Signals and,
// with a terminal, SIGWINCH (resize) but not SIGINT (Ctrl-C is a byte for
// the box's terminal then).
func SessionSignals(terminal bool) []os.Signal {
	var out []os.Signal
	for _, s := range Signals {
		if !terminal || s != syscall.SIGINT {
			out = append(out, s)
		}
	}
	if terminal {
		out = append(out, syscall.SIGWINCH)
	}
	return out
}
