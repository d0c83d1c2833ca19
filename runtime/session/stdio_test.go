package session

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// A terminal among a session's fds 0-2 reaches the box as a pipe relayed
// to and from it; anything else is passed as it is.
func TestSessionStdio(t *testing.T) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()

	s, err := newRelay(tty, pw, tty)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 3 {
		t.Fatalf("%d files", len(s.Files))
	}
	for i, f := range s.Files {
		if term.IsTerminal(int(f.Fd())) {
			t.Errorf("fd %d for the box is a terminal", i)
		}
	}
	if s.Files[1] != pw {
		t.Errorf("stdout, a pipe, was not passed as it is")
	}
	// The box's ends, as the agent would hold them.
	in, errOut := dup(t, s.Files[0]), dup(t, s.Files[2])
	s.Sent()

	// Typed at the terminal: reaches the box's stdin.
	if _, err := m.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil || line != "typed\n" {
		t.Errorf("box stdin read %q, %v", line, err)
	}
	// Written by the box on stderr: reaches the terminal.
	if _, err := errOut.Write([]byte("from the box\n")); err != nil {
		t.Fatal(err)
	}
	errOut.Close()
	s.Drain(2 * time.Second)
	// (The terminal echoes what was typed first.)
	var shown []byte
	buf := make([]byte, 256)
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(string(shown), "from the box") && time.Now().Before(deadline); {
		m.SetReadDeadline(deadline)
		k, err := m.Read(buf)
		shown = append(shown, buf[:max(k, 0)]...)
		if err != nil {
			break
		}
	}
	if !strings.Contains(string(shown), "from the box") {
		t.Errorf("terminal shows %q, want what the box wrote", shown)
	}
	in.Close()
}

func dup(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), f.Name())
}
