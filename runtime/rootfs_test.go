package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/test/testutil"
	"golang.org/x/sys/unix"
)

// addTopLayer puts a second layer over the fixture's image: it deletes
// /etc/motd (a whiteout), makes /opt/opaque opaque and adds files.
func addTopLayer(t *testing.T, f *fixture) {
	t.Helper()
	for _, d := range []string{"opt/dir", "opt/opaque"} {
		must(t, os.MkdirAll(filepath.Join(f.layer, d), 0o755))
	}
	writeFile(t, filepath.Join(f.layer, "opt/dir/a"), "a\n")
	writeFile(t, filepath.Join(f.layer, "opt/opaque/old"), "old\n")
	top := t.TempDir()
	for _, d := range []string{"etc", "opt/dir", "opt/opaque"} {
		must(t, os.MkdirAll(filepath.Join(top, d), 0o755))
	}
	must(t, unix.Mknod(filepath.Join(top, "etc/motd"), unix.S_IFCHR|0o644, 0))
	must(t, unix.Setxattr(filepath.Join(top, "opt/opaque"), "user.overlay.opaque", []byte("y"), 0))
	writeFile(t, filepath.Join(top, "opt/dir/b"), "b\n")
	writeFile(t, filepath.Join(top, "opt/opaque/new"), "new\n")
	f.layers = []string{top, f.layer}
}

// The kernel overlay, fuse-overlayfs and the copy fallback show the same
// merged tree, and the fallbacks say so on stderr.
func TestRootfsModes(t *testing.T) {
	for _, tc := range []struct{ mode, warning string }{
		{"", ""},
		{"fuse", "devbox: warning: the kernel refused overlayfs in the user namespace (disabled for a test (fuse)): using fuse-overlayfs, which is slower\n"},
		{"copy", "devbox: warning: the kernel refused overlayfs in the user namespace (disabled for a test (copy)) and fuse-overlayfs is not installed: copying the image into "},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			f := newFixture(t)
			if tc.mode == "fuse" && findFuseOverlayfs() == "" {
				testutil.Skip(t, "fuse-overlayfs is not installed")
			}
			addTopLayer(t, f)
			s := f.spec("sh", "-c", "ls /opt/dir /opt/opaque; test -e /etc/motd && echo MOTD; echo changed > /opt/dir/a; id -u; echo $(cat /opt/dir/b)")
			s.User = testUserName(f.m)
			r := f.run(s, nil, "DEVBOX_TEST_ROOTFS="+tc.mode)
			if r.code != 0 {
				t.Fatal(r)
			}
			if want := "/opt/dir:\na\nb\n\n/opt/opaque:\nnew\n"; !strings.HasPrefix(r.stdout, want) || strings.Contains(r.stdout, "MOTD") {
				t.Errorf("merged tree: %q", r.stdout)
			}
			if !strings.HasPrefix(r.stderr, tc.warning) || (tc.warning == "" && r.stderr != "") {
				t.Errorf("stderr %q, want %q", r.stderr, tc.warning)
			}
			// The box's changes persist in the same mode, and its files
			// keep their owners (the user could not write /opt/dir/a
			// otherwise: it belongs to the image's owner, the user).
			r = f.run(f.spec("cat", "/opt/dir/a"), nil, "DEVBOX_TEST_ROOTFS="+tc.mode)
			if r.stdout != "changed\n" {
				t.Errorf("second run: %s", r)
			}
			s = f.spec("true")
			s.Remove = true
			if r := f.run(s, nil, "DEVBOX_TEST_ROOTFS="+tc.mode); r.code != 0 {
				t.Errorf("run with Remove: %s", r)
			}
			if entries, _ := os.ReadDir(f.dir); len(entries) != 0 {
				t.Errorf("left after Remove: %v", entries)
				left, _ := os.ReadDir(filepath.Join(f.dir, "rootfs-copy"))
				t.Errorf("in rootfs-copy: %v", left)
			}
		})
	}
}

// A second init on a running box's directory fails at once: it neither
// mounts the same writable layer twice nor falls back to a copy.
func TestRootfsInUse(t *testing.T) {
	f := newFixture(t)
	l := f.startLive(f.spec("sh", "-c", "echo READY; read x"))
	l.waitFor("READY")
	r := f.run(f.spec("true"), nil)
	l.finish()
	if r.code != 125 || !strings.HasPrefix(r.stderr, "devbox: box 0123456789abcdef is already running: another init holds ") || strings.Contains(r.stderr, "warning") {
		t.Errorf("second init: %s", r)
	}
}

// An ephemeral box with ScratchInMemory writes nothing into its directory
// on the disk while it runs (its tmpfs exists only in its own mount
// namespace), and leaves nothing behind. Where the kernel overlay is
// refused with the tmpfs, the box goes back to the disk before any
// fallback, rather than copying the image into memory.
func TestScratchInMemory(t *testing.T) {
	for _, mode := range []string{"", "copy"} {
		t.Run("mode="+mode, func(t *testing.T) {
			f := newFixture(t)
			s := f.spec("sh", "-c", "echo scratch > /written; echo READY; read x; cat /written; echo DONE")
			s.Remove, s.ScratchInMemory = true, true
			l := f.startLive(s, "DEVBOX_TEST_ROOTFS="+mode)
			l.waitFor("READY")
			entries, _ := os.ReadDir(f.dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			switch mode {
			case "":
				if !userXattrsHere(t) {
					testutil.Skip(t, "tmpfs has no user xattrs on this kernel (Linux 6.6): the disk is used, as TestRootfsModes covers")
				}
				if len(names) != 0 {
					t.Errorf("on the disk while the box runs: %v, want nothing", names)
				}
			case "copy":
				if !slices.Contains(names, "rootfs-copy") {
					t.Errorf("on the disk while the box runs: %v, want the copy there", names)
				}
			}
			if code := l.finish(); code != 0 {
				t.Errorf("box exited %d: %s", code, l.stderr)
			}
			if got := l.waitFor("DONE"); got != "scratch" {
				t.Errorf("the box read back %q from its scratch", got)
			}
			if entries, _ := os.ReadDir(f.dir); len(entries) != 0 {
				t.Errorf("left after the box: %v", entries)
			}
		})
	}
}

// userXattrsHere reports whether a tmpfs of this kernel takes user xattrs.
func userXattrsHere(t *testing.T) bool {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "xattr-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(d)
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return userXattrs(fd)
}
