// Command devbox is the single devbox binary. main only routes: it decides
// from one environment key which process this is (the CLI, or a stage: the
// box init, the unpacker, a host-side helper) before any flag parsing.
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
	"github.com/devbox-dev/devbox/cmd/factory"
	"github.com/devbox-dev/devbox/cmd/root"
	"github.com/devbox-dev/devbox/doctor"
	"github.com/devbox-dev/devbox/export"
	"github.com/devbox-dev/devbox/hostexec"
	"github.com/devbox-dev/devbox/image/commit"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/holder"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
)

// stages are the entry points of processes devbox starts in its namespaces.
var stages = map[string]func() int{
	factory.StageUnpack:   func() int { return store.UnpackMain(rootless.ExtraFiles()[0]) },
	factory.StageRmtree:   store.RemoveMain,
	factory.StageSnapshot: func() int { return store.FreezeMain(rootless.ExtraFiles()[0]) },
	runtime.StageInit:     func() int { holder.MaybeSpare(runtime.WarmUp, runtime.Taken); return runtime.InitMain() },
	holder.Stage:          holder.Main,
	runtime.StageLockRO:   runtime.LockROMain,
	doctor.StageProbe:     doctor.ProbeMain,
	hostexec.Stage:        hostexec.ServeMain,
	export.StageRead:      export.ReadMain,
	commit.StageRead:      commit.ReadMain,
	keeper.Stage:          keeper.Main,
}

func main() {
	trace.Mark("main")
	stage := rootless.CurrentStage()
	if stage == "" && hostexec.IsClient(os.Args[0]) {
		os.Exit(hostexec.ClientMain()) // devbox-host in a dev box (a build without embedded programs)
	}
	if stage == "" {
		// A repeated `devbox run` whose inputs are unchanged runs from its
		// record, through a warm holder, without the CLI (internal/warm).
		if code, ok := warm.TryReplay(os.Args, os.Environ()); ok {
			os.Exit(code)
		}
		os.Exit(root.Main())
	}
	if run, ok := stages[stage]; ok {
		os.Exit(run())
	}
	os.Stderr.WriteString("devbox: unknown internal stage " + stage + "\n")
	os.Exit(125)
}
