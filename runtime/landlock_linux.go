package runtime

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// landlockScopeAttr is the part of struct landlock_ruleset_attr that
// scoping needs (Landlock ABI 6): no file system or network rights are
// handled, only the scope.
type landlockScopeAttr struct {
	handledFS  uint64
	handledNet uint64
	scoped     uint64
}

// scopeAbstractSockets puts the calling thread (and what it forks) in a
// Landlock domain that may connect or send only to abstract unix sockets
// made inside it: a box that shares the host's network namespace shares
// its abstract sockets too (an X server's @/tmp/.X11-unix/X0 accepts the
// user's uid without a cookie under the common `xhost +si:localuser`),
// and this keeps them out. Needs Linux 6.12 with Landlock enabled.
func scopeAbstractSockets() error {
	attr := landlockScopeAttr{scoped: unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET}
	fd, _, e := unix.RawSyscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if e != 0 {
		return fmt.Errorf("keeping the host's abstract unix sockets out of a sandbox on the host's network needs Landlock's socket scope (Linux 6.12, Landlock enabled): %w (hint: --net slirp, the default, gives the box a network of its own)", e)
	}
	defer unix.Close(int(fd))
	if _, _, e := unix.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); e != 0 {
		return fmt.Errorf("scoping the box's abstract unix sockets (Landlock): %w", e)
	}
	return nil
}
