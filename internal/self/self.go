// Package self names the devbox program users run. A release build of
// devbox is a small front (cmd/devbox) that executes the full CLI, which it
// embeds, from the runtime directory (internal/libexec); the CLI must name
// the front, never its own copy under /run/user, wherever devbox's path is
// kept (exported wrappers, a box's devbox-host) or shown (doctor). The front
// passes its path in the environment; the CLI adopts it first thing in main.
package self

import (
	"os"
	"path/filepath"
	"strings"
)

// StageEnv names the devbox process a program is started as (the box
// init, the unpacker, …: rootless.CurrentStage); unset, it is the CLI.
const StageEnv = "_DEVBOX_STAGE"

// Env carries the front's path to the CLI. Private: Adopt removes it, and
// like every _DEVBOX_ variable it never reaches a box.
const Env = "_DEVBOX_FRONT"

// front is the adopted front's path, "" when none was.
var front string

// Adopt takes the front's path from the environment and removes the
// variable, so that nothing the CLI starts sees it. A value that is not
// an absolute, clean path of an executable regular file is ignored: this
// program then names itself.
func Adopt() {
	v, ok := os.LookupEnv(Env)
	if !ok {
		return
	}
	os.Unsetenv(Env)
	if valid(v) {
		front = v
	}
}

func valid(p string) bool {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.HasPrefix(p, "/proc/") {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Path returns the devbox program to name: the front this program was
// started by, or this program itself.
func Path() (string, error) {
	if front != "" {
		return front, nil
	}
	return os.Executable()
}

// Front returns the adopted front's path, "" when this program was not
// started by one (or runs in it: a build that links the CLI in-process).
func Front() string {
	if exe, err := os.Executable(); err == nil && exe == front {
		return ""
	}
	return front
}
