// Command devbox-net is devbox's network helper on its own: the same code
// as the "net" stage (package network/host/helper) in a binary of its own,
// which devbox embeds (package internal/libexec) and starts next to every
// box with user-mode networking. Keeping gVisor's network stack here keeps
// it out of the CLI. It is not installed or run by itself.
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
