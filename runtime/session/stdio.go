package session

import (
	"os"

	"github.com/devbox-dev/devbox/internal/boxstdio"
)

// newRelay is what a session without a box pty gets as fds 0-2
// (internal/boxstdio): the caller's own descriptors where they are pipes,
// sockets or somebody else's devices; anything else, a terminal included,
// a pipe devbox copies to and from while the session runs. A terminal
// is never handed to a box: a process the session leaves behind could
// keep it, read what the user types at the host's shell after the session
// (a password for sudo), and write to it or change its modes at any time.
func newRelay(in, out, errOut *os.File) (*boxstdio.Relay, error) {
	return boxstdio.New(in, out, errOut, false)
}
