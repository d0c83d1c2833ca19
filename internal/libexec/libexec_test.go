package libexec

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPath(t *testing.T) {
	saved := progs
	t.Cleanup(func() { progs = saved })

	progs = map[string]prog{}
	if p, err := Path(Init, t.TempDir()); p != "" || err != nil {
		t.Fatalf("without an embedded program: %q, %v; want \"\", nil", p, err)
	}

	blob := []byte("#!/bin/sh\nexit 0\n")
	progs = map[string]prog{Init: {blob, "0123456789abcdef0123\n"}}
	dir := filepath.Join(t.TempDir(), "run")
	p, err := Path(Init, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "devbox-init-0123456789abcdef", "devbox-init"); p != want {
		t.Fatalf("path %q, want %q", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o500 || fi.Size() != int64(len(blob)) {
		t.Errorf("written with mode %v size %d", fi.Mode(), fi.Size())
	}
	// A second call trusts the complete copy.
	if p2, err := Path(Init, dir); err != nil || p2 != p {
		t.Fatalf("second call: %q, %v", p2, err)
	}
	// A truncated copy (a crash while writing it) is replaced.
	if err := os.Chmod(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, blob[:3], 0o500); err != nil {
		t.Fatal(err)
	}
	if _, err := Path(Init, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(blob) {
		t.Errorf("a truncated copy was kept: %q", b)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only devbox-init", len(ents))
	}
	// A new version leaves the old one's copy while that was used within
	// the hour (a devbox of the old version may be about to run it) …
	other := filepath.Join(dir, "devbox-net-0123456789abcdef")
	must(t, os.MkdirAll(other, 0o700))
	progs[Init] = prog{blob, "fedcba9876543210fedc"}
	if _, err := Path(Init, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("a copy in use by another version was removed: %v", err)
	}
	// … and removes it, and only it, once unused for longer.
	old := time.Now().Add(-unusedFor - time.Minute)
	must(t, os.Chtimes(filepath.Dir(p), old, old))
	must(t, os.Chtimes(other, old, old))
	must(t, os.Remove(filepath.Join(dir, "devbox-init-fedcba9876543210", "devbox-init")))
	p3, err := Path(Init, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(p)); !os.IsNotExist(err) {
		t.Errorf("the old version's copy is still there: %v", err)
	}
	if _, err := os.Stat(p3); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another program's copy went too: %v", err)
	}
	progs[Init] = prog{blob, "0123456789abcdef0123\n"}
	// Another program is not there.
	if p, err := Path(Net, dir); p != "" || err != nil {
		t.Errorf("a program that is not embedded: %q, %v", p, err)
	}
	progs[Init] = prog{blob, "short"}
	if _, err := Path(Init, t.TempDir()); err == nil {
		t.Error("an embedded program without a digest must fail")
	}
}

// On a noexec runtime directory the program runs from a memfd, also as
// the child of a process that passes it extra files.
func TestMemfd(t *testing.T) {
	blob, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true:", err)
	}
	p, err := memfd(Init, blob)
	if err != nil {
		t.Fatal(err)
	}
	extra := make([]*os.File, 5)
	for i := range extra {
		if extra[i], err = os.Open(os.DevNull); err != nil {
			t.Fatal(err)
		}
		defer extra[i].Close()
	}
	c := exec.Command(p)
	c.ExtraFiles = extra
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("running %s: %v %s", p, err, out)
	}
}

// SealedCopy: the embedded program, or without one devbox itself (here
// the test binary), in a memfd that nobody can write, whatever their
// permissions (TestEscapeInitExeOverwrite).
func TestSealedCopy(t *testing.T) {
	saved := progs
	defer func() { progs = saved }()
	self, err := os.ReadFile("/proc/self/exe")
	must(t, err)
	blob, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true:", err)
	}
	for _, tc := range []struct {
		name  string
		progs map[string]prog
		want  []byte
	}{
		{"embedded", map[string]prog{Init: {blob: blob, sum: strings.Repeat("ab", 32)}}, blob},
		{"not embedded", map[string]prog{}, self},
	} {
		progs = tc.progs
		p, err := SealedCopy(Init)
		must(t, err)
		got, err := os.ReadFile(p)
		must(t, err)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %s holds %d bytes, not the program's %d", tc.name, p, len(got), len(tc.want))
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err == nil {
			_, err = f.WriteAt([]byte{0}, 0)
			f.Close()
		}
		if err == nil {
			t.Errorf("%s: %s can be written", tc.name, p)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestInstalled: a packaged copy beside the front is used only when it is
// this build's program and only root can change it; anything else (the
// user's own file, a group-writable one, another digest, a link) is not.
func TestInstalled(t *testing.T) {
	saved := progs
	t.Cleanup(func() { progs = saved })
	sum := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	progs = map[string]prog{CLI: {[]byte("cli"), sum + "\n"}}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	front := filepath.Join(root, "bin", "devbox")
	dir := filepath.Join(root, "libexec", "devbox")
	cli := filepath.Join(dir, CLI)
	for _, d := range []string{filepath.Dir(front), dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string, mode os.FileMode) {
		t.Helper()
		os.Remove(p)
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	// Files this test writes are root's only when it runs as root (CI's
	// unit tests do); as another user every case must refuse.
	asRoot := os.Getuid() == 0
	cases := []struct {
		name  string
		setup func()
		ok    bool
	}{
		{"this build's, root's", func() { write(cli, "x", 0o755); write(cli+".sha256", sum+"\n", 0o644) }, asRoot},
		{"another digest", func() { write(cli+".sha256", "ffff"+sum[4:], 0o644) }, false},
		{"group-writable program", func() { write(cli+".sha256", sum, 0o644); write(cli, "x", 0o775) }, false},
		{"a link", func() {
			write(cli, "x", 0o755)
			os.Rename(cli, cli+".real")
			os.Symlink(cli+".real", cli)
		}, false},
		{"no digest file", func() { os.Remove(cli); write(cli, "x", 0o755); os.Remove(cli + ".sha256") }, false},
	}
	for _, c := range cases {
		c.setup()
		if got := Installed(CLI, front); (got == cli) != c.ok || (got != "" && got != cli) {
			t.Errorf("%s: Installed = %q, want ok=%v", c.name, got, c.ok)
		}
	}
	if got := Installed(Init, front); got != "" {
		t.Errorf("a program this build does not embed: %q", got)
	}
}

// TestInstalledWritableAncestor: the packaged CLI's directories up to /
// must be writable by their owner (root) alone, or sticky: a directory
// another user may write (a group-writable /usr/local, a home) lets that
// user move the packaged directory away between the check and the exec.
// onlyOwnerWrites is what Installed asks of every ancestor, for owner 0;
// here a tree of the test's user stands in for root's.
func TestInstalledWritableAncestor(t *testing.T) {
	me := uint32(os.Getuid())
	for _, c := range []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"private", 0o755, true},
		{"sticky, world-writable", 0o777 | os.ModeSticky, true},
		{"group-writable", 0o775, false},
		{"world-writable", 0o777, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			anc := t.TempDir()
			if err := os.Chmod(anc, 0o755); err != nil {
				t.Fatal(err)
			}
			mid := filepath.Join(anc, "usr")
			dir := filepath.Join(mid, "libexec")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(mid, c.mode); err != nil {
				t.Fatal(err)
			}
			if got := onlyOwnerWrites(dir, anc, me); got != c.ok {
				t.Errorf("an ancestor %v: %v, want %v", c.mode, got, c.ok)
			}
		})
	}
	for _, c := range []struct {
		name string
		dir  string
		top  string
		ok   bool
	}{
		{"another owner's directory", "/", "/", me == 0},
		{"a file, not a directory", "/etc/passwd", "/", false},
		{"a missing directory", "/nonexistent-devbox", "/", false},
	} {
		if got := onlyOwnerWrites(c.dir, c.top, me); got != c.ok {
			t.Errorf("%s: %v, want %v", c.name, got, c.ok)
		}
	}
}
