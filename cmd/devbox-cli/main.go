// Command devbox-cli is devbox's full command line (cmd/cli). Release
// builds embed it in devbox's front (cmd/devbox, internal/libexec), which
// executes it for every command it does not serve itself; it is not
// installed on its own.
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

	"github.com/devbox-dev/devbox/cmd/cli"
)

func main() { os.Exit(cli.Main()) }
