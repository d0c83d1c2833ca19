package box

import (
	"github.com/devbox-dev/devbox/internal/libexec"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// InitExe returns the program to start as a box init (rootless.Spec.Exe):
// the one embedded in this build, written once into the runtime directory,
// or "" (devbox itself) when the build embeds none or it cannot be written.
func InitExe() string { return libexecPath(libexec.Init) }

// SealedInitExe is InitExe for a box whose commands may trace its init
// (runtime.Security.MayTrace): a sealed in-memory copy, which a box that
// opens /proc/1/exe for writing cannot change. The file InitExe names is
// what every later start executes: such a box made its init execute
// something else (ptrace), so that the file was no longer busy, and wrote
// it (TestEscapeInitExeOverwrite). It costs a copy of the program (~3 ms).
func SealedInitExe() (string, error) { return libexec.SealedCopy(libexec.Init) }

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
