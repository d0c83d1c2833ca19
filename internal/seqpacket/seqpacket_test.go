package seqpacket

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func pair(t *testing.T, passCred bool) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if passCred {
		if err := unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			t.Fatal(err)
		}
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sp")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

func TestRoundTrip(t *testing.T) {
	for _, cred := range []bool{false, true} {
		a, b := pair(t, cred)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := Send(a, map[string]int{"n": 7}, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		p, err := Recv(b, 4096, 4)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]int
		if err := p.Decode(&v); err != nil || v["n"] != 7 {
			t.Fatalf("decoded %v, %v", v, err)
		}
		if len(p.Files) != 1 {
			t.Fatalf("%d files", len(p.Files))
		}
		if _, err := p.Files[0].Write([]byte("x")); err != nil {
			t.Errorf("the passed pipe end: %v", err)
		}
		p.Close()
		r.Close()
		want := 0
		if cred {
			want = os.Getpid()
		}
		if p.PID != want {
			t.Errorf("credentials (asked: %v): pid %d, want %d", cred, p.PID, want)
		}
		a.Close()
		if _, err := Recv(b, 4096, 4); !errors.Is(err, io.EOF) {
			t.Errorf("after the peer closed: %v, want io.EOF", err)
		}
	}
}

func TestDecodeClosesFiles(t *testing.T) {
	a, b := pair(t, false)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := Send(a, "not an object", r); err != nil {
		t.Fatal(err)
	}
	r.Close()
	p, err := Recv(b, 4096, 4)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ N int }
	if err := p.Decode(&v); err == nil {
		t.Fatal("decoding a string into a struct succeeded")
	}
	if err := p.Files[0].Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("the files of an undecodable packet stay open: %v", err)
	}
}
