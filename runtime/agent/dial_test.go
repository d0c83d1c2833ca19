package agent

import (
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDialChecksListener: Dial accepts a socket that the caller's uid
// listens on and refuses, sending nothing, one another uid listens on (as
// root: the listening thread takes another uid for its listen(2), which
// is what SO_PEERCRED reports); DialAny takes either.
func TestDialChecksListener(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own.sock")
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: own, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := Dial(own)
	if err != nil {
		t.Fatalf("Dial of the caller's own listener: %v", err)
	}
	c.Close()
	if unix.Geteuid() != 0 {
		t.Log("another uid's listener needs root here; TestEscapeAgentSocketStandIn makes one as the test user")
		return
	}
	other := filepath.Join(dir, "other.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: other}); err != nil {
		t.Fatal(err)
	}
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// setresuid on this thread only (the raw syscall, not Go's
		// process-wide one); the saved uid 0 takes it back.
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 65534, ^uintptr(0)); e != 0 {
			t.Fatal(e)
		}
		defer unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0))
		if err := unix.Listen(fd, 4); err != nil {
			t.Error(err)
		}
	}()
	if c, err := Dial(other); err == nil || !strings.Contains(err.Error(), "uid 65534") || !strings.Contains(err.Error(), "hint:") {
		if c != nil {
			c.Close()
		}
		t.Errorf("Dial of uid 65534's listener: %v, want a refusal naming it with a hint", err)
	}
	c, err = DialAny(other)
	if err != nil {
		t.Fatalf("DialAny: %v", err)
	}
	cred, err := c.PeerCred()
	c.Close()
	if err != nil || cred.Uid != 65534 {
		t.Errorf("the listener's uid: %+v %v (the test is void)", cred, err)
	}
}
