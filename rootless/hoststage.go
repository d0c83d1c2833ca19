package rootless

import (
	"os"
	"os/exec"
)

// HostStage returns a command that runs devbox stage in the caller's own
// namespaces, as the caller (no user namespace): a helper process of the
// host side, such as the network helper. The environment is the caller's
// without devbox's private keys; the caller adds stdio, files and process
// attributes.
//
// exe, when not empty, is the program to run instead of devbox's own binary
// (an embedded helper, internal/libexec).
func HostStage(exe, stage string, args ...string) *exec.Cmd {
	if exe == "" {
		exe = "/proc/self/exe"
	}
	return &exec.Cmd{
		Path: exe,
		Args: append([]string{"devbox-" + stage}, args...),
		Env:  append(ScrubEnv(os.Environ()), envStage+"="+stage),
	}
}
