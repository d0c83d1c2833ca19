package seccomp

import (
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultCaps is the capability bounding set of a box's commands by default
// (bit i: capability i), rootless Podman's: CHOWN, DAC_OVERRIDE, FOWNER,
// FSETID, KILL, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID and
// SYS_CHROOT. Its filter is precompiled.
const DefaultCaps uint64 = 1<<unix.CAP_CHOWN | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_FOWNER |
	1<<unix.CAP_FSETID | 1<<unix.CAP_KILL | 1<<unix.CAP_NET_BIND_SERVICE | 1<<unix.CAP_SETFCAP |
	1<<unix.CAP_SETGID | 1<<unix.CAP_SETPCAP | 1<<unix.CAP_SETUID | 1<<unix.CAP_SYS_CHROOT

// Program returns the default filter (Docker's default profile, as data from
// github.com/moby/profiles/seccomp, plus the TIOCSTI/TIOCLINUX denial) for a
// process whose capability bounding set is caps (bit i set = capability i,
// e.g. 1<<unix.CAP_SYS_ADMIN), compiled to classic BPF for the running
// architecture. For DefaultCaps it returns a copy of the precompiled program.
func Program(caps uint64) ([]unix.SockFilter, error) {
	if caps == DefaultCaps {
		if p := defaultProgram(); len(p) > 0 {
			return slices.Clone(p), nil
		}
	}
	t, ok := targetFor(runtime.GOARCH)
	if !ok {
		return nil, fmt.Errorf("compiling seccomp filter: architecture %s is not supported", runtime.GOARCH)
	}
	prog, err := compile(&defaultProfile, caps, t)
	if err != nil {
		return nil, fmt.Errorf("compiling seccomp filter: %w", err)
	}
	return prog, nil
}

// Install loads prog on the calling OS thread only (no TSYNC): lock the
// goroutine to its thread first (runtime.LockOSThread) and keep it locked,
// so that the filter stays with the code that forks the processes meant to
// inherit it. The caller holds CAP_SYS_ADMIN in its user namespace or has
// set no_new_privs.
//
// A thread under the filter gets ENOSYS from clone3, so a fork from it must
// use clone: in Go, no SysProcAttr.UseCgroupFD (and no CLONE_NEWTIME).
func Install(prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > maxInsns {
		return fmt.Errorf("installing seccomp filter: %d instructions", len(prog))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		err := fmt.Errorf("installing seccomp filter: %w", errno)
		if errno == unix.EACCES {
			err = fmt.Errorf("%w (hint: set no_new_privs first, or hold CAP_SYS_ADMIN)", err)
		}
		return err
	}
	return nil
}
