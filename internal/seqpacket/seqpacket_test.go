package seqpacket

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
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

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestRecvSizes: a packet is received whole at any size up to the limit;
// a longer one is dropped with its descriptors (none stays open here) and
// the next packet still arrives; peeking at a packet's size never
// receives its descriptors twice.
func TestRecvSizes(t *testing.T) {
	const limit = 8192
	for _, tc := range []struct {
		name string
		size int // bytes of the JSON string's content
		want error
	}{
		{"small", 1, nil},
		{"a page", 4096, nil},
		{"at the limit", limit - 2, nil}, // two quotes
		{"one over", limit - 1, ErrTooLarge},
		{"far over", 10 * limit, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, false)
			if err := a.SetWriteBuffer(1 << 20); err != nil {
				t.Fatal(err)
			}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			before := openFDs(t)
			payload := strings.Repeat("x", tc.size)
			if err := Send(a, payload, w); err != nil {
				t.Fatal(err)
			}
			if err := Send(a, "next"); err != nil {
				t.Fatal(err)
			}
			w.Close()
			p, err := Recv(b, limit, 4)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Recv: %v, want %v", err, tc.want)
			}
			if err == nil {
				var got string
				if err := p.Decode(&got); err != nil || got != payload {
					t.Fatalf("decoded %d bytes, %v", len(got), err)
				}
				if len(p.Files) != 1 {
					t.Fatalf("%d files, want 1", len(p.Files))
				}
				p.Close()
			}
			// Every copy of the pipe's write end is closed: the read end
			// sees EOF.
			if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
				t.Errorf("a copy of the passed descriptor stays open: read %d, %v", n, err)
			}
			if got := openFDs(t); got != before-1 {
				t.Errorf("%d descriptors open after the packet, want %d", got, before-1)
			}
			p, err = Recv(b, limit, 4)
			var next string
			if err != nil || p.Decode(&next) != nil || next != "next" {
				t.Errorf("the packet after: %q, %v", next, err)
			}
		})
	}
}

// appender writes its own encoding, which is what goes out, not
// encoding/json's of the struct.
type appender struct{ N int }

func (a appender) AppendJSON(b []byte) []byte { return append(b, `{"n":42}`...) }

func TestSendJSONAppender(t *testing.T) {
	a, b := pair(t, false)
	if err := Send(a, appender{N: 7}); err != nil {
		t.Fatal(err)
	}
	p, err := Recv(b, 4096, 4)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Data) != `{"n":42}` {
		t.Errorf("sent %q, want the value's own encoding", p.Data)
	}
}
