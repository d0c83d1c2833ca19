package runtime

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/rootless"
	"golang.org/x/sys/unix"
)

// testPTY opens a host pty pair to stand for the user's terminal.
func testPTY(t testing.TB, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	rc, _ := m.SyscallConn()
	var n uint32
	var ierr error
	rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil {
			return
		}
		if n, ierr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN); ierr != nil {
			return
		}
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
	if ierr != nil {
		t.Fatal(ierr)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// ptyRun is a box running on a test pty; out receives what the test's
// master reads, CRs removed, and is closed at EIO (every holder of the
// slave gone).
type ptyRun struct {
	t      testing.TB
	master *os.File
	p      *rootless.Process
	out    chan string
	seen   strings.Builder
}

func (f *fixture) startPTY(s *Spec, rows, cols uint16) *ptyRun {
	f.t.Helper()
	s.Terminal = true
	master, slave := testPTY(f.t, rows, cols)
	p, err := f.start(s, slave, slave, slave, nil)
	slave.Close()
	if err != nil {
		f.t.Fatal(err)
	}
	r := &ptyRun{t: f.t, master: master, p: p, out: make(chan string, 64)}
	go func() {
		defer close(r.out)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				r.out <- strings.ReplaceAll(string(buf[:n]), "\r", "")
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// waitFor reads the terminal until it has shown s.
func (r *ptyRun) waitFor(s string) {
	r.t.Helper()
	timeout := time.After(10 * time.Second)
	for !strings.Contains(r.seen.String(), s) {
		select {
		case chunk, ok := <-r.out:
			if !ok {
				r.t.Fatalf("the terminal closed before %q: %q", s, r.seen.String())
			}
			r.seen.WriteString(chunk)
		case <-timeout:
			r.t.Fatalf("timed out waiting for %q: %q", s, r.seen.String())
		}
	}
}

// wait returns everything the terminal showed and the exit code. The
// terminal is read all along: a full terminal would block the box.
func (r *ptyRun) wait() (string, int) {
	r.t.Helper()
	type exit struct {
		code int
		err  error
	}
	exited := make(chan exit, 1)
	go func() {
		code, err := r.p.Wait()
		exited <- exit{code, err}
	}()
	var e *exit
	timeout := time.After(20 * time.Second)
	for {
		select {
		case chunk, ok := <-r.out:
			if !ok {
				if e == nil {
					x := <-exited
					e = &x
				}
				if e.err != nil {
					r.t.Fatal(e.err)
				}
				return r.seen.String(), e.code
			}
			r.seen.WriteString(chunk)
		case x := <-exited:
			e = &x
			exited = nil
		case <-timeout:
			r.t.Fatalf("the box or its terminal output did not end: %q", r.seen.String())
		}
	}
}

// With Terminal the command runs on a pty of the box's own devpts, as its
// controlling terminal, with the size of the init's terminal; typed input
// reaches it.
func TestTerminal(t *testing.T) {
	f := newFixture(t)
	s := f.spec("sh", "-c", `tty; stty size; test -t 0 && test -t 1 && test -t 2 && echo all-ttys; stat -c %U /dev/pts/0; ls /dev/pts | wc -l; echo READY; read line; echo "got:$line"`)
	s.User = testUserName(f.m)
	r := f.startPTY(s, 37, 101)
	r.waitFor("READY\n")
	r.master.Write([]byte("typed text\n"))
	out, code := r.wait()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"/dev/pts/0\n37 101\nall-ttys\n", testUserName(f.m) + "\n", "got:typed text\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// A size change of the user's terminal (SIGWINCH to the box) reaches the
// command.
func TestTerminalResize(t *testing.T) {
	f := newFixture(t)
	s := f.spec("sh", "-c", `trap 'stty size; exit 0' WINCH; echo READY; while :; do sleep 0.01; done`)
	r := f.startPTY(s, 24, 80)
	r.waitFor("READY\n")
	rc, _ := r.master.SyscallConn()
	rc.Control(func(fd uintptr) {
		unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 132})
	})
	r.p.Signal(syscall.SIGWINCH)
	out, code := r.wait()
	if code != 0 || !strings.Contains(out, "50 132\n") {
		t.Errorf("exit %d, output after resize %q", code, out)
	}
}

// Output written right before the command exits is not lost, and a
// background process holding the terminal does not keep the box alive.
func TestTerminalDrain(t *testing.T) {
	f := newFixture(t)
	r := f.startPTY(f.spec("sh", "-c", `i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; sleep 100 & exit 3`), 24, 80)
	start := time.Now()
	out, code := r.wait()
	if code != 3 || !strings.HasSuffix(out, "line-2999\n") || strings.Count(out, "\n") != 3000 {
		t.Errorf("exit %d, %d lines, ends %q", code, strings.Count(out, "\n"), out[max(0, len(out)-40):])
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the box waited %v for its background process", d)
	}
}
