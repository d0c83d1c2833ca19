package cmdutil

import (
	"github.com/devbox-dev/devbox/internal/initbin"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// InitExe returns the program to start as a box init (rootless.Spec.Exe):
// the init embedded in this build, written once into the runtime directory,
// or "" (devbox itself) when the build embeds none or it cannot be written.
func InitExe() string {
	base, err := rbox.RuntimeBase()
	if err != nil {
		return ""
	}
	p, err := initbin.Path(base)
	if err != nil {
		return ""
	}
	return p
}
