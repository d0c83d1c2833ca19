// Command devbox-net is devbox's network helper on its own: the same code
// as the "net" stage (package network/host/helper) in a binary of its own,
// which devbox embeds (package internal/libexec) and starts next to every
// box with user-mode networking. Keeping gVisor's network stack here keeps
// it out of the CLI. It is not installed or run by itself.
//
// Start-up is on every box's critical path: the runtime does not look for
// a cgroup CPU limit at start and does not keep re-reading it (devbox's
// processes are short-lived or mostly wait, and the box init runs with
// GOMAXPROCS=1).
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"

	"github.com/devbox-dev/devbox/internal/trace"
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/network/host/helper"
	"github.com/devbox-dev/devbox/rootless"
)

func main() {
	trace.Mark("main")
	if rootless.CurrentStage() != nethost.Stage {
		os.Stderr.WriteString("devbox-net: this is part of devbox and is started by it\n")
		os.Exit(125)
	}
	os.Exit(helper.Main())
}
