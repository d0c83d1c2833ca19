// Command devbox-init is the box init on its own: the same code as devbox's
// "init" stage (runtime.InitMain) in a binary that links none of the CLI's
// dependencies, so it starts in a fraction of the time. `make build` embeds
// it in devbox (package internal/libexec), which runs it for every box it
// starts; it is not installed or run by itself.
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

	"github.com/devbox-dev/devbox/cgroup/keeper"
	"github.com/devbox-dev/devbox/hostexec"
	"github.com/devbox-dev/devbox/internal/holder"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
)

func main() {
	trace.Mark("main")
	if rootless.CurrentStage() == holder.Stage {
		os.Exit(holder.Main())
	}
	if rootless.CurrentStage() == keeper.Stage {
		os.Exit(keeper.Main())
	}
	if rootless.CurrentStage() == runtime.StageLockRO {
		os.Exit(runtime.LockROMain())
	}
	if rootless.CurrentStage() == hostexec.Stage {
		os.Exit(hostexec.ServeMain())
	}
	if rootless.CurrentStage() == "" && hostexec.IsClient(os.Args[0]) {
		os.Exit(hostexec.ClientMain()) // devbox-host in a dev box
	}
	if rootless.CurrentStage() != runtime.StageInit {
		os.Stderr.WriteString("devbox-init: this is part of devbox and is started by it\n")
		os.Exit(125)
	}
	holder.MaybeSpare(runtime.WarmUp, runtime.Taken)
	os.Exit(runtime.InitMain())
}
