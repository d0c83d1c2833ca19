package runtime

import (
	"os/exec"
	"syscall"
)

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
