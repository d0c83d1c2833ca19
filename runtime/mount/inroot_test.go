//go:build linux

package mount

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostile builds a root directory whose symbolic links all point out of
// it, and a directory standing for the host next to it.
func hostile(t *testing.T) (root int, rootDir, host string) {
	t.Helper()
	base := t.TempDir()
	rootDir, host = filepath.Join(base, "root"), filepath.Join(base, "host")
	for _, d := range []string{rootDir + "/etc", rootDir + "/real", host + "/dir"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(host+"/file", []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"etc/abs-file":    host + "/file",
		"etc/rel-file":    "../../../../../../../.." + host + "/file",
		"etc/abs-dir":     host + "/dir",
		"etc/dangling":    host + "/dir/new-file",
		"etc/dangling-up": "../../../../../../../../../run/created",
		"etc/loop":        "loop",
		"etc/magic":       "/proc/self/root/etc",
		"etc/to-real":     "../real",
		"link-to-etc":     "etc",
		"abs-root":        "/",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(rootDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, rootDir, host
}

// where returns the path fd refers to, relative to rootDir ("" outside).
func where(t *testing.T, fd int, rootDir string) string {
	t.Helper()
	p, err := os.Readlink(FdPath(fd))
	if err != nil {
		t.Fatal(err)
	}
	if p == rootDir {
		return "/"
	}
	if rest, ok := strings.CutPrefix(p, rootDir+"/"); ok {
		return "/" + rest
	}
	return "OUTSIDE:" + p
}

func TestOpenStaysInRoot(t *testing.T) {
	root, rootDir, host := hostile(t)
	for _, tc := range []struct{ path, want, err string }{
		{"/etc", "/etc", ""},
		{"etc", "/etc", ""},
		{"/", "/", ""},
		{"/..", "/", ""},
		{"/../../etc/../..", "/", ""},
		{"/abs-root/etc", "/etc", ""},
		{"/link-to-etc/to-real", "/real", ""},
		{"/etc/abs-dir", "", "no such file or directory"}, // host/dir does not exist inside
		{"/etc/abs-file", "", "no such file or directory"},
		{"/etc/rel-file", "", "no such file or directory"},
		{"/etc/loop", "", "too many levels of symbolic links"},
		{"/etc/magic", "", "no such file or directory"}, // the root has no /proc
	} {
		fd, err := Open(root, tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Open(%q): err %v, want %q", tc.path, err, tc.err)
			}
			if err == nil {
				t.Errorf("Open(%q) reached %s", tc.path, where(t, fd, rootDir))
				unix.Close(fd)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tc.path, err)
			continue
		}
		if got := where(t, fd, rootDir); got != tc.want {
			t.Errorf("Open(%q) reached %s, want %s", tc.path, got, tc.want)
		}
		unix.Close(fd)
	}
	if _, err := os.Stat(host + "/dir/new-file"); err == nil {
		t.Fatal("host file created")
	}
}

func TestEnsureCreatesInsideRoot(t *testing.T) {
	root, rootDir, host := hostile(t)
	for _, tc := range []struct {
		path string
		file bool
		want string
	}{
		{"/etc/hosts", true, "/etc/hosts"},
		{"/new/deep/dir", false, "/new/deep/dir"},
		{"/etc/abs-file", true, host + "/file"},         // created inside at the host path's name
		{"/etc/rel-file", true, host + "/file"},         // the same file, through ..
		{"/etc/abs-dir/sub", false, host + "/dir/sub"},  // a directory through a link
		{"/etc/dangling", true, host + "/dir/new-file"}, // a dangling link's target
		{"/etc/dangling-up", false, "/run/created"},     // .. cannot climb above the root
		{"/link-to-etc/to-real/x", true, "/real/x"},     // links inside the root work as usual
		{"/etc/hosts", true, "/etc/hosts"},              // already there
	} {
		fd, err := Ensure(root, tc.path, tc.file)
		if err != nil {
			t.Errorf("Ensure(%q): %v", tc.path, err)
			continue
		}
		if got := where(t, fd, rootDir); got != tc.want {
			t.Errorf("Ensure(%q) made %s, want %s", tc.path, got, tc.want)
		}
		var st unix.Stat_t
		unix.Fstat(fd, &st)
		if isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR; isDir == tc.file {
			t.Errorf("Ensure(%q, file=%v) made mode %o", tc.path, tc.file, st.Mode)
		}
		unix.Close(fd)
	}
	// Nothing was created or changed outside.
	entries, _ := os.ReadDir(host + "/dir")
	if b, _ := os.ReadFile(host + "/file"); len(entries) != 0 || string(b) != "host" {
		t.Errorf("the host changed: %v %q", entries, b)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(rootDir), "run")); err == nil {
		t.Error("a directory was created next to the root")
	}
}

func TestEnsureErrors(t *testing.T) {
	root, _, _ := hostile(t)
	for _, tc := range []struct {
		path string
		file bool
		err  string
	}{
		{"/etc", true, "is a directory, a file is needed"},
		{"/etc/hosts-dir/x", false, ""}, // setup below
		{"/etc/loop", true, "too many levels of symbolic links"},
	} {
		if tc.err == "" {
			continue
		}
		fd, err := Ensure(root, tc.path, tc.file)
		if err == nil {
			unix.Close(fd)
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Ensure(%q, %v): %v, want %q", tc.path, tc.file, err, tc.err)
		}
	}
	fd, err := Ensure(root, "/etc/file", true)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if _, err := Ensure(root, "/etc/file", false); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("a file where a directory is needed: %v", err)
	}
	if _, err := Ensure(root, "/etc/file/below", false); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("a directory below a file: %v", err)
	}
}

// /proc magic links, which can name anything, are refused even when the
// root has a /proc.
func TestOpenRefusesMagicLinks(t *testing.T) {
	slash, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(slash)
	for _, p := range []string{"/proc/self/cwd", "/proc/self/root/etc", "/dev/fd/0"} {
		fd, err := Open(slash, p)
		if err == nil {
			unix.Close(fd)
		}
		if !errors.Is(err, unix.ELOOP) {
			t.Errorf("Open(/, %q): %v, want ELOOP", p, err)
		}
	}
}

func TestOpenFileRefusesSpecialFiles(t *testing.T) {
	root, rootDir, _ := hostile(t)
	if err := unix.Mkfifo(filepath.Join(rootDir, "etc/passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(root, "/etc/passwd"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO: %v", err)
	}
	if _, err := OpenFile(root, "/etc"); err == nil {
		t.Errorf("a directory was opened")
	}
	os.WriteFile(filepath.Join(rootDir, "real/group"), []byte("g"), 0o644)
	os.Symlink("/real/group", filepath.Join(rootDir, "etc/group"))
	fd, err := OpenFile(root, "/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
}

func TestStrings(t *testing.T) {
	if got := FlagString(unix.MS_RDONLY | unix.MS_BIND | unix.MS_REC | 1<<30); got != "ro,bind,rec,0x40000000" {
		t.Errorf("FlagString = %q", got)
	}
	if got := (Mount{Kind: Bind, Source: "/a", Target: "/b", Flags: unix.MS_BIND, Optional: true}).String(); got != "bind /a -> /b [bind] (optional)" {
		t.Errorf("String = %q", got)
	}
	if Kind(99).String() != "kind(99)" || ReadOnly.String() != "readonly" {
		t.Errorf("Kind strings")
	}
}
