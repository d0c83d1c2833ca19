package runtime

import (
	"os/exec"
	goruntime "runtime"
	"syscall"

	"github.com/devbox-dev/devbox/rootless"
)

// onCleanThread runs fork, which starts one of the box's commands, on a
// thread whose inheritable and ambient capability sets are empty: the init
// received every capability as ambient across its own exec, and threads
// keep their sets.
func onCleanThread(fork func() error) error {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := rootless.ClearInheritableCaps(); err != nil {
		return err
	}
	return fork()
}

// startCommand starts cmd on a clean thread.
func startCommand(cmd *exec.Cmd) error { return onCleanThread(cmd.Start) }

// forkExec is syscall.ForkExec on a clean thread.
func forkExec(file string, argv []string, attr *syscall.ProcAttr) (pid int, err error) {
	err = onCleanThread(func() error {
		pid, err = syscall.ForkExec(file, argv, attr)
		return err
	})
	return pid, err
}
