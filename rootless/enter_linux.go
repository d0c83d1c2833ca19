package rootless

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/devbox-dev/devbox/internal/trace"
	"golang.org/x/sys/unix"
)

// A target stage started by Start in keep-id mode finishes entering its
// namespace here, before any package that imports this one initialises and
// on the main thread (package initialisation runs locked to it), which the
// parent-death signal needs: the kernel looks for it on the thread group
// leader.
func init() {
	v, ok := os.LookupEnv(envStart)
	if !ok || CurrentStage() == "" {
		return // the CLI ignores a stray variable
	}
	_ = os.Unsetenv(envStart)
	trace.Mark("stage: runtime up")
	if strings.HasSuffix(v, ",main") {
		// The stage calls Enter from main, after its own packages have
		// initialised: on the main thread, which this keeps for main.
		runtime.LockOSThread()
		pending = v
		return
	}
	mustEnter(v)
}

// pending is the start descriptor of a stage started with
// Spec.EnterInMain, until Enter.
var pending string

// Enter finishes entering the namespace of a stage started with
// Spec.EnterInMain (a no-op otherwise). It must be called from main before
// anything that needs uid 0 or the id maps; a caller that is gone or a
// failure ends the process with code 125.
func Enter() {
	if pending == "" {
		return
	}
	v := pending
	pending = ""
	mustEnter(v)
	runtime.UnlockOSThread()
}

func mustEnter(v string) {
	if err := enter(v); err != nil {
		if !errors.Is(err, errCallerGone) {
			fmt.Fprintf(os.Stderr, "devbox: entering the box's user namespace: %v\n", err)
		}
		os.Exit(125)
	}
}

var errCallerGone = errors.New("devbox exited before the box started")

// enter waits until the caller has written the namespace's id maps, then
// makes the process uid 0 and gid 0 of the namespace (it holds every
// capability there, carried over its exec as ambient capabilities) and
// clears the inheritable and ambient sets again. v is "FD,keep" or
// "FD,detach", then optional flags: FD is the start pipe; "keep" means the
// process must die with the caller; ",nogroups" that setgroups is denied
// (a single-id map); ",main" that the stage calls Enter from main.
func enter(v string) error {
	fdStr, flags, _ := strings.Cut(v, ",")
	mode, _, _ := strings.Cut(flags, ",")
	fd, err := strconv.Atoi(fdStr)
	if err != nil || fd < 3 {
		return fmt.Errorf("bad start descriptor %q", v)
	}
	defer unix.Close(fd)
	var b [1]byte
	for {
		n, err := unix.Read(fd, b[:])
		if err == unix.EINTR {
			continue
		}
		if n != 1 {
			return errCallerGone
		}
		break
	}
	trace.Mark("stage: maps seen")
	if !rootEarly {
		if err := becomeRoot(flags); err != nil {
			return err
		}
	}
	if mode == "keep" {
		// The uid change made the process undumpable and cleared its
		// parent-death signal: armed again. Not in a warm holder's spare:
		// its parent is the holder, and its connection to devbox stands
		// for devbox (internal/holder).
		if !rootEarly {
			if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
				return fmt.Errorf("setting the parent-death signal: %w", err)
			}
		}
		// The caller keeps the pipe's write end open while it lives: a
		// hang-up means it died before the signal was armed again.
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, 0); n > 0 && pfd[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
			return errCallerGone
		}
	}
	return nil
}

// rootEarly: EnterEarly made the process root already.
var rootEarly bool

// EnterEarly makes a stage started with Spec.EnterInMain uid 0 of its user
// namespace now, for a process whose id maps are known to be written (a
// warm holder's spare, internal/holder); Enter then only waits for the
// start byte. A no-op elsewhere.
func EnterEarly() error {
	if pending == "" || rootEarly {
		return nil
	}
	_, flags, _ := strings.Cut(pending, ",")
	if err := becomeRoot(flags); err != nil {
		return err
	}
	rootEarly = true
	return nil
}

// becomeRoot makes the process uid 0 and gid 0 of its namespace (it holds
// every capability there, carried over its exec as ambient capabilities)
// and clears the inheritable and ambient sets again. flags as for enter.
func becomeRoot(flags string) error {
	// With setgroups denied (a single-id map), the supplementary groups
	// stay as they were: unmapped, shown as the overflow group.
	if !slices.Contains(strings.Split(flags, ","), "nogroups") {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
	}
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0)
	// Every thread: where the runtime supports it (no cgo), the whole
	// process at once. ClearInheritableCaps before each exec covers the
	// rest.
	_ = clearInheritable(true)
	return ClearInheritableCaps()
}

// ClearInheritableCaps empties the calling thread's inheritable and ambient
// capability sets, so that a program it executes as another user cannot pick
// up capabilities through file-inheritable bits (CVE-2022-27651 class). The
// caller locks the goroutine to its thread around the exec.
func ClearInheritableCaps() error { return clearInheritable(false) }

func clearInheritable(allThreads bool) error {
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := &[2]unix.CapUserData{}
	if err := unix.Capget(hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	var e1, e2 syscall.Errno
	if allThreads {
		_, _, e1 = syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0)
		_, _, e2 = syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	} else {
		_, _, e1 = syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0)
		_, _, e2 = syscall.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	}
	if e1 != 0 {
		return fmt.Errorf("clearing ambient capabilities: %w", e1)
	}
	if e2 != 0 {
		return fmt.Errorf("clearing inheritable capabilities: %w", e2)
	}
	return nil
}
