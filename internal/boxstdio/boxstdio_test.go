package boxstdio

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Direct: pipes, sockets and somebody else's devices are given as they
// are; regular files, directories and (unless asked) terminals are not.
func TestDirect(t *testing.T) {
	dir := t.TempDir()
	file, err := os.Create(filepath.Join(dir, "f"))
	must(t, err)
	defer file.Close()
	d, err := os.Open(dir)
	must(t, err)
	defer d.Close()
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	defer w.Close()
	a, b, err := socketPair()
	must(t, err)
	defer a.Close()
	defer b.Close()
	null, err := os.Open(os.DevNull)
	must(t, err)
	defer null.Close()
	for _, tc := range []struct {
		name string
		f    *os.File
		want bool
	}{
		{"regular file", file, false},
		{"directory", d, false},
		{"pipe", r, true},
		{"socket", a, true},
		{"/dev/null", null, os.Getuid() != 0},
	} {
		for _, terminals := range []bool{false, true} {
			if got := Direct(tc.f, terminals); got != tc.want {
				t.Errorf("%s (terminals %v): Direct %v, want %v", tc.name, terminals, got, tc.want)
			}
		}
	}
}

// A file as stdin and as stdout and stderr (one file: one pipe, the
// order kept) reaches the box as pipes whose bytes devbox copies.
func TestRelayFiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	must(t, os.WriteFile(in, []byte("input\n"), 0o444))
	inF, err := os.Open(in)
	must(t, err)
	defer inF.Close()
	out := filepath.Join(dir, "out")
	outF, err := os.Create(out)
	must(t, err)
	defer outF.Close()
	s, err := New(inF, outF, outF, true)
	must(t, err)
	if !s.Relayed() || len(s.Files) != 3 || s.Files[1] != s.Files[2] {
		t.Fatalf("relayed %v, %d files, stdout and stderr one pipe: %v", s.Relayed(), len(s.Files), s.Files[1] == s.Files[2])
	}
	for i, f := range s.Files {
		if Direct(f, false) != true {
			t.Errorf("fd %d for the box is not a pipe", i)
		}
	}
	// The box's ends, as a box would hold them.
	boxIn, boxOut := dup(t, s.Files[0]), dup(t, s.Files[1])
	s.Sent()
	got, err := io.ReadAll(boxIn)
	if err != nil || string(got) != "input\n" {
		t.Errorf("the box read %q, %v", got, err)
	}
	for _, l := range []string{"1\n", "2\n", "3\n"} {
		_, err := boxOut.WriteString(l)
		must(t, err)
	}
	boxOut.Close()
	s.Drain(2 * time.Second)
	if b, _ := os.ReadFile(out); string(b) != "1\n2\n3\n" {
		t.Errorf("the file got %q", b)
	}
}

func dup(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	must(t, err)
	return os.NewFile(uintptr(fd), f.Name())
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b"), nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
