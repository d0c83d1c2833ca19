package runtime

import (
	"errors"
	"net"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A thread scoped by scopeAbstractSockets cannot connect to an abstract
// socket made outside it, but can to one it made itself; another thread
// of the process still can.
func TestScopeAbstractSockets(t *testing.T) {
	name := "@devbox-landlock-test-" + strconv.Itoa(unix.Getpid())
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func(n string) error {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Connect(fd, &unix.SockaddrUnix{Name: n})
	}
	type res struct{ outside, own, scopeErr error }
	ch := make(chan res, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the scoped thread ends with the goroutine
		var r res
		// Landlock wants no_new_privs or CAP_SYS_ADMIN in the thread's
		// user namespace (the box init has the latter when it scopes);
		// an unprivileged test has neither, so this thread gets the
		// former.
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			r.scopeErr = err
			ch <- r
			return
		}
		if r.scopeErr = scopeAbstractSockets(); r.scopeErr != nil {
			ch <- r
			return
		}
		r.outside = dial(name)
		own := name + "-own"
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			defer unix.Close(fd)
			if err = unix.Bind(fd, &unix.SockaddrUnix{Name: own}); err == nil {
				err = unix.Listen(fd, 1)
			}
		}
		if err != nil {
			r.own = err
		} else {
			r.own = dial(own)
		}
		ch <- r
	}()
	var r res
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the scoped thread did not answer")
	}
	if errors.Is(r.scopeErr, unix.ENOSYS) || errors.Is(r.scopeErr, unix.EOPNOTSUPP) || errors.Is(r.scopeErr, unix.EINVAL) {
		t.Skipf("Landlock's abstract socket scope is not available here: %v", r.scopeErr)
	}
	if r.scopeErr != nil {
		t.Fatal(r.scopeErr)
	}
	if !errors.Is(r.outside, unix.EPERM) {
		t.Errorf("connect to an abstract socket made outside the scope: %v, want EPERM", r.outside)
	}
	if r.own != nil {
		t.Errorf("connect to the scoped thread's own abstract socket: %v", r.own)
	}
	if err := dial(name); err != nil {
		t.Errorf("an unscoped thread cannot connect: %v", err)
	}
}
