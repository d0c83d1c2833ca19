//go:build !amd64 && !arm64

package seccomp

import "golang.org/x/sys/unix"

// defaultProgram is empty: Program reports the architecture unsupported.
func defaultProgram() []unix.SockFilter { return nil }
