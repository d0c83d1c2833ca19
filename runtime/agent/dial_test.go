package agent

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

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
	if c, err = DialBlocking(own); err != nil {
		t.Fatalf("DialBlocking of the caller's own listener: %v", err)
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
	for name, dial := range map[string]func(string) (*Conn, error){"Dial": Dial, "DialBlocking": DialBlocking} {
		if c, err := dial(other); err == nil || !strings.Contains(err.Error(), "uid 65534") || !strings.Contains(err.Error(), "hint:") {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s of uid 65534's listener: %v, want a refusal naming it with a hint", name, err)
		}
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

// TestDialBlocking: a blocking connection carries requests and replies
// with descriptors both ways, a Receive blocked in another goroutine
// returns when the connection is closed, and nobody listening is "not
// running".
func TestDialBlocking(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	if _, err := DialBlocking(sock); err == nil || !IsNotRunning(err) {
		t.Fatalf("DialBlocking of no socket: %v, want not running", err)
	}
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		uc, err := l.AcceptUnix()
		if err != nil {
			served <- err
			return
		}
		s := NewConn(uc)
		defer s.Close()
		var req Request
		files, err := s.Receive(&req)
		if err == nil && (req.Type != TypeExec || len(files) != 1 || req.Args[0] != "true") {
			err = fmt.Errorf("the agent got %+v with %d files", req, len(files))
		}
		for _, f := range files {
			f.Close()
		}
		if err == nil {
			err = s.Send(Reply{Type: TypeStarted, PID: 7}, os.Stdin)
		}
		served <- err
		_, _ = s.Receive(&req) // until the client closes
	}()
	c, err := DialBlocking(sock)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Send(Request{Type: TypeExec, Args: []string{"true"}}, os.Stdout))
	var rep Reply
	files, err := c.Receive(&rep)
	must(err)
	must(<-served)
	if rep.Type != TypeStarted || rep.PID != 7 || len(files) != 1 {
		t.Fatalf("reply %+v with %d files", rep, len(files))
	}
	files[0].Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.Receive(&rep)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a Receive on a closed connection returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a blocked Receive")
	}
}
