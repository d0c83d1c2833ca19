package box

import (
	"github.com/devbox-dev/devbox/internal/libexec"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// InitExe returns the program to start as a box init (rootless.Spec.Exe):
// the one embedded in this build, written once into the runtime directory,
// or "" (devbox itself) when the build embeds none or it cannot be written.
func InitExe() string { return libexecPath(libexec.Init) }

// NetExe is InitExe for the network helper.
func NetExe() string { return libexecPath(libexec.Net) }

func libexecPath(name string) string {
	base, err := rbox.RuntimeBase()
	if err != nil {
		return ""
	}
	p, err := libexec.Path(name, base)
	if err != nil {
		return ""
	}
	return p
}
