package seccomp

import "golang.org/x/sys/unix"

// defaultProgram is the filter for DefaultCaps on this architecture (a
// function, not a variable: nothing to set up at start-up).
func defaultProgram() []unix.SockFilter { return defaultProgramAMD64[:] }
