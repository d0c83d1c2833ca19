// Package keeper is the process that keeps the user's devbox.scope alive.
//
// systemd collects a scope once it has no process left, so the delegated
// scope that holds every box of a user (cgroup.Shared) gets one long-lived
// process of its own, in the leaf devbox.scope/keeper: this one. It does
// nothing but wait for SIGTERM or SIGINT (systemctl --user stop devbox.scope);
// it has its own session, its stdio on /dev/null and no other descriptors,
// so nothing ties it to the CLI that started it. The package imports only
// the standard library: the stage runs from devbox-init, which stays small.
package keeper

import (
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Stage is the stage name of the keeper (cmd/devbox and cmd/devbox-init
// route it).
const Stage = "cgroup-keeper"

// Main waits for a signal to stop and returns the exit code.
func Main() int {
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	// Give back what start-up allocated: the process lives for the
	// whole user session.
	debug.FreeOSMemory()
	<-ch
	return 0
}
