package cmdutil

import (
	"os"
	"syscall"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cgroup/keeper"
	"github.com/devbox-dev/devbox/rootless"
)

// CgroupHost is cgroup.DetectHost with the keeper of devbox.scope wired in.
func CgroupHost() cgroup.Host {
	h := cgroup.DetectHost()
	h.StartKeeper = StartKeeper
	return h
}

// StartKeeper starts the keeper of a new devbox.scope (package
// cgroup/keeper, from devbox-init): in its own session, stdio on
// /dev/null, no other descriptor, in /. It outlives devbox.
func StartKeeper() (*os.Process, error) {
	c := rootless.HostStage(InitExe(), keeper.Stage)
	c.Env = append(c.Env, "GOMAXPROCS=1")
	c.Dir = "/"
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return nil, err
	}
	go c.Wait() //nolint:errcheck // reaps it should it end while devbox runs
	return c.Process, nil
}
