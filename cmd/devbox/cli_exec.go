//go:build devbox_embedcli

package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/internal/libexec"
	"github.com/devbox-dev/devbox/internal/rundir"
	"github.com/devbox-dev/devbox/internal/self"
	"github.com/devbox-dev/devbox/internal/trace"
)

// runCLI executes the embedded CLI in place of the front: the same argv
// and environment, plus the front's own path (self.Env). It returns only
// when that fails.
func runCLI() int {
	exe, err := os.Executable()
	if err != nil {
		return cliFailed(fmt.Errorf("finding devbox's own path: %w", err))
	}
	// A package's copy beside the front first: only root can change it,
	// so an AppArmor profile may name it (hosts that restrict user
	// namespaces); else the copy in devbox's runtime directory.
	prog := libexec.Installed(libexec.CLI, exe)
	if prog == "" {
		if base, berr := rundir.Base(); berr == nil {
			prog, err = libexec.Path(libexec.CLI, base)
		}
	}
	if prog == "" {
		// No runtime directory of ours (su without a login session):
		// the CLI itself says what is wrong when a command needs one.
		prog, err = libexec.Memfd(libexec.CLI)
	}
	if err != nil {
		return cliFailed(err)
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, self.Env+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, self.Env+"="+exe)
	trace.Mark("front: exec CLI")
	return cliFailed(syscall.Exec(prog, os.Args, env))
}

func cliFailed(err error) int {
	fmt.Fprintf(os.Stderr, "devbox: starting devbox's CLI: %v (hint: devbox writes it into $XDG_RUNTIME_DIR/devbox once per version; run devbox doctor)\n", err)
	return 125
}
