// Package cli is devbox's full command line and its stages: Main decides
// from one environment key which process this is (the CLI, or a stage:
// the box init, the unpacker, a host-side helper) before any flag parsing.
// The program cmd/devbox-cli is Main alone; devbox's front (cmd/devbox)
// embeds that program and executes it for everything it does not serve
// itself, or, in a build without the embedded CLI, calls Main in-process.
package cli

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
	"github.com/devbox-dev/devbox/internal/self"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
)

// stages are the entry points of processes devbox starts in its
// namespaces (plus netStage in a build without the embedded programs).
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

// Main runs this process as what its environment says and returns its
// exit code.
func Main() int {
	trace.Mark("main")
	self.Adopt()
	stage := rootless.CurrentStage()
	if stage == "" && hostexec.IsClient(os.Args[0]) {
		return hostexec.ClientMain() // devbox-host in a dev box (a build without embedded programs)
	}
	if stage == "" {
		// The front tried the replay of a repeated `devbox run`
		// (internal/warm); a run records what it started with.
		warm.Started(os.Environ())
		return root.Main()
	}
	if run, ok := stages[stage]; ok {
		return run()
	}
	if run, ok := netStage(stage); ok {
		return run()
	}
	os.Stderr.WriteString("devbox: unknown internal stage " + stage + "\n")
	return 125
}
