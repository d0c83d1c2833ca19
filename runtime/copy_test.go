package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tree lists dir as "path kind[ content|target]" lines.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case fi.IsDir():
			out = append(out, rel+"/ "+fi.Mode().Perm().String())
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+" "+fi.Mode().Perm().String()+" "+strings.TrimSpace(string(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The copy fallback merges layers as overlayfs shows them, and never
// follows a link out of the copy.
func TestCopyLayers(t *testing.T) {
	outside := t.TempDir()
	bottom, top := t.TempDir(), t.TempDir()
	mk := func(root string, dirs ...string) {
		for _, d := range dirs {
			must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
		}
	}
	mk(bottom, "etc", "opt/opaque/sub", "opt/keep", "var/lib", "was-dir/x")
	writeFile(t, filepath.Join(bottom, "etc/motd"), "motd")
	writeFile(t, filepath.Join(bottom, "etc/passwd"), "old passwd")
	writeFile(t, filepath.Join(bottom, "opt/opaque/sub/old"), "old")
	writeFile(t, filepath.Join(bottom, "opt/keep/a"), "a")
	writeFile(t, filepath.Join(bottom, "was-file"), "file")
	must(t, os.Symlink(outside, filepath.Join(bottom, "escape")))
	must(t, os.Symlink(outside, filepath.Join(bottom, "var/lib/app")))
	os.Chmod(filepath.Join(bottom, "opt/keep/a"), 0o640)

	mk(top, "etc", "opt/opaque", "opt/keep", "was-file", "escape", "var/lib")
	must(t, unix.Mknod(filepath.Join(top, "etc/motd"), unix.S_IFCHR|0o600, 0))
	must(t, unix.Mknod(filepath.Join(top, "was-dir"), unix.S_IFCHR|0o600, 0))
	must(t, unix.Setxattr(filepath.Join(top, "opt/opaque"), "user.overlay.opaque", []byte("y"), 0))
	writeFile(t, filepath.Join(top, "opt/opaque/new"), "new")
	writeFile(t, filepath.Join(top, "opt/keep/b"), "b")
	writeFile(t, filepath.Join(top, "etc/passwd"), "new passwd")
	writeFile(t, filepath.Join(top, "was-file/inside"), "inside")
	writeFile(t, filepath.Join(top, "escape/payload"), "payload")
	must(t, os.Mkdir(filepath.Join(top, "var/lib/app"), 0o700))
	writeFile(t, filepath.Join(top, "var/lib/app/db"), "db")

	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	b := &box{dir: root}
	must(t, b.copyLayers([]string{top, bottom}))

	want := []string{
		"rootfs-copy/ -rwxr-xr-x",
		"rootfs-copy/escape/ -rwxr-xr-x",
		"rootfs-copy/escape/payload -rw-r--r-- payload",
		"rootfs-copy/etc/ -rwxr-xr-x",
		"rootfs-copy/etc/passwd -rw-r--r-- new passwd",
		"rootfs-copy/opt/ -rwxr-xr-x",
		"rootfs-copy/opt/keep/ -rwxr-xr-x",
		"rootfs-copy/opt/keep/a -rw-r----- a",
		"rootfs-copy/opt/keep/b -rw-r--r-- b",
		"rootfs-copy/opt/opaque/ -rwxr-xr-x",
		"rootfs-copy/opt/opaque/new -rw-r--r-- new",
		"rootfs-copy/var/ -rwxr-xr-x",
		"rootfs-copy/var/lib/ -rwxr-xr-x",
		"rootfs-copy/var/lib/app/ -rwx------",
		"rootfs-copy/var/lib/app/db -rw-r--r-- db",
		"rootfs-copy/was-file/ -rwxr-xr-x",
		"rootfs-copy/was-file/inside -rw-r--r-- inside",
	}
	if got := tree(t, dir); !slices.Equal(got, want) {
		t.Errorf("merged copy:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the copy wrote outside: %v", entries)
	}

	// A single layer whose link is not replaced stays a link.
	dir2 := t.TempDir()
	root2, _ := os.OpenRoot(dir2)
	defer root2.Close()
	must(t, (&box{dir: root2}).copyLayers([]string{bottom}))
	if target, err := os.Readlink(filepath.Join(dir2, "rootfs-copy/escape")); err != nil || target != outside {
		t.Errorf("link copied as %q %v", target, err)
	}
}
