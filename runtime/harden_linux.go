package runtime

import (
	"errors"
	"fmt"
	goruntime "runtime"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime/seccomp"
	"golang.org/x/sys/unix"
)

// hardening is what every command of a box gets from the thread that forks
// it (docs/security.md): a new anonymous session keyring, the capability
// bounding set, no_new_privs and the seccomp filter. Each of them is a
// property of a thread, inherited by a child forked from it, so the init
// sets them on a thread of its own that forks the command and then ends;
// the init's other threads keep what they need to run the box.
type hardening struct {
	bset uint64 // bit i: capability i stays in the bounding set
	nnp  bool   // set no_new_privs
	// The seccomp filter: none when unconfined, else Docker's profile for
	// filterCaps, compiled by the first thread hardened (off the start's
	// critical path; the default set's program is precompiled).
	unconfined bool
	// scopeAbstract: no abstract unix socket made outside the command
	// (Landlock), for a sandbox on the host's network namespace.
	scopeAbstract bool
	filterCaps    uint64
	filter        []unix.SockFilter
	// ready holds a thread hardened ahead (warm), waiting for its fork.
	ready chan *forker
	// rearm: a box agent hardens its next thread once a session it
	// started has ended (rearm), off the path of the sessions: forks a
	// session at a time, for its whole life.
	rearm bool
	armed bool // a warm thread is ready or on its way
}

// forker is a hardened thread that runs one fork.
type forker struct {
	err  error // hardening it failed
	work chan func() error
	done chan error
}

// newHardening computes a box's hardening from its spec once.
func newHardening(s Security) (*hardening, error) {
	bset, err := CapMask(s.Caps)
	if err != nil {
		return nil, fmt.Errorf("box spec: %w", err)
	}
	h := &hardening{bset: bset, nnp: !s.AllowSetuid, ready: make(chan *forker, 1),
		unconfined: s.Unconfined, filterCaps: bset, scopeAbstract: s.ScopeAbstract}
	if s.Nested {
		h.filterCaps |= 1 << unix.CAP_SYS_ADMIN
	}
	return h, nil
}

// apply hardens the calling thread, which must be locked to its goroutine
// and is never handed back to the Go scheduler afterwards.
func (h *hardening) apply() error {
	if err := rootless.ClearInheritableCaps(); err != nil {
		return err
	}
	// An anonymous session keyring of the box's own (NULL name): the
	// caller's session keyring is not reachable from the command. The
	// user keyring is the user namespace's own since Linux 5.3.
	if _, _, e := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); e != 0 && e != unix.ENOSYS {
		return fmt.Errorf("joining a new session keyring: %w", e)
	}
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if h.bset&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("dropping capability %s from the bounding set: %w", seccomp.CapNames[c], err)
		}
	}
	if h.nnp {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	if h.scopeAbstract {
		if err := scopeAbstractSockets(); err != nil {
			return err
		}
	}
	if h.unconfined {
		return nil
	}
	if h.filter == nil {
		// Threads are hardened one after the other (warm), so this is
		// written once, before any other reads it.
		f, err := seccomp.Program(h.filterCaps)
		if err != nil {
			return fmt.Errorf("compiling the seccomp filter: %w", err)
		}
		h.filter = f
	}
	if err := seccomp.Install(h.filter); err != nil {
		return fmt.Errorf("loading the seccomp filter: %w", err)
	}
	return nil
}

// boxHardening is the hardening of this init's box, set by Init before the
// first command starts.
var boxHardening *hardening

// warm hardens a thread ahead of its fork, while the init still sets up
// the box (on another CPU, where there is one): the thread then waits in
// ready for the fork it is to run.
func (h *hardening) warm() {
	h.armed = true
	f := &forker{work: make(chan func() error), done: make(chan error, 1)}
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f.err = h.apply()
		h.ready <- f
		fork := <-f.work
		if f.err != nil {
			f.done <- f.err
			return
		}
		f.done <- fork()
	}()
}

// onCleanThread runs fork, which starts one of the box's commands, on a
// thread of its own: its inheritable and ambient capability sets are empty
// (the init received every capability as ambient across its own exec, and
// threads keep their sets), and the box's hardening is applied to it (by
// warm, ahead of time). The thread ends with the goroutine (it stays
// locked), so nothing else ever runs on it.
func onCleanThread(fork func() error) error {
	h := boxHardening
	if h == nil {
		// Never: Init sets it first. A command is not started bare.
		return errors.New("starting a command before the box's hardening is known")
	}
	// Calls are serialised (one command; an agent starts its sessions
	// under its lock).
	if !h.armed {
		h.warm()
	}
	f := <-h.ready
	h.armed = false
	f.work <- fork
	return <-f.done
}

// rearmBoxHardening hardens the box agent's next thread ahead of its
// session, when none is ready: after a session's exit reply is sent, not
// right after its fork, where hardening a thread (a seccomp filter
// compiled and loaded, a thread made) held the agent's only P while the
// session ran, and delayed its exit reply. Called under the agent's lock,
// as onCleanThread is.
func rearmBoxHardening() {
	if h := boxHardening; h != nil && h.rearm && !h.armed {
		h.warm()
	}
}
