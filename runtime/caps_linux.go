package runtime

import (
	"os/exec"
	goruntime "runtime"
	"syscall"

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

// forkExec is startCommand for syscall.ForkExec.
func forkExec(file string, argv []string, attr *syscall.ProcAttr) (int, error) {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := rootless.ClearInheritableCaps(); err != nil {
		return 0, err
	}
	return syscall.ForkExec(file, argv, attr)
}
