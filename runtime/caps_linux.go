package runtime

import (
	"os/exec"
	goruntime "runtime"

	"github.com/devbox-dev/devbox/rootless"
)

// startCommand starts one of the box's commands from a thread whose
// inheritable and ambient capability sets are empty: the init received every
// capability as ambient across its own exec, and threads keep their sets.
func startCommand(cmd *exec.Cmd) error {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := rootless.ClearInheritableCaps(); err != nil {
		return err
	}
	return cmd.Start()
}
