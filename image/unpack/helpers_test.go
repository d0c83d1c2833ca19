package unpack

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tent describes one tar entry for buildTar.
type tent struct {
	typ          byte
	name         string
	link         string
	body         string
	mode         int64 // 0: 0755 for directories, 0644 otherwise
	uid, gid     int
	mtime, atime time.Time
	xattrs       map[string]string
	major, minor int64
}

var testTime = time.Unix(1700000000, 123456789)

func buildTar(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{
			Typeflag:   e.typ,
			Name:       e.name,
			Linkname:   e.link,
			Mode:       e.mode,
			Uid:        e.uid,
			Gid:        e.gid,
			ModTime:    e.mtime,
			AccessTime: e.atime,
			Devmajor:   e.major,
			Devminor:   e.minor,
			Format:     tar.FormatPAX,
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if e.typ == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = testTime
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords[paxXattrPrefix+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name, body string) tent       { return tent{typ: tar.TypeReg, name: name, body: body} }
func dir(name string) tent             { return tent{typ: tar.TypeDir, name: name} }
func symlink(name, target string) tent { return tent{typ: tar.TypeSymlink, name: name, link: target} }
func hardlink(name, target string) tent {
	return tent{typ: tar.TypeLink, name: name, link: target}
}

// testOptions are the options for the running user: as a normal user
// ownership cannot be applied.
func testOptions(t testing.TB) Options {
	return Options{IgnoreChownErrors: os.Geteuid() != 0, Logf: t.Logf}
}

func isRoot() bool { return os.Geteuid() == 0 }

// makeWritable registers a cleanup that makes every directory under dir
// writable again, so that t.TempDir's removal works as a normal user.
func makeWritable(t testing.TB, dir string) {
	t.Cleanup(func() { chmodDirs(dir) })
}

// chmodDirs makes every directory under dir (not following symlinks)
// readable and writable by its owner.
func chmodDirs(dir string) {
	var walk func(p string)
	walk = func(p string) {
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			return
		}
		if fi.Mode().Perm()&0o700 != 0o700 {
			os.Chmod(p, fi.Mode().Perm()|0o700)
		}
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if e.IsDir() {
				walk(filepath.Join(p, e.Name()))
			}
		}
	}
	walk(dir)
}

// newDir returns a fresh temporary directory that can be removed even if
// Apply made some of it read-only.
func newDir(t testing.TB) string {
	d := t.TempDir()
	makeWritable(t, d)
	return d
}

// nodeInfo is what snapshot records of one file.
type nodeInfo struct {
	mode     fs.FileMode
	size     int64
	mtime    time.Time
	uid, gid uint32
	nlink    uint64
	link     string
	sum      [32]byte
	xattrs   string
}

// snapshot records every node under dir except the subtree skip.
func snapshot(t testing.TB, dir, skip string) map[string]nodeInfo {
	t.Helper()
	m := map[string]nodeInfo{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := nodeInfo{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime(), uid: st.Uid, gid: st.Gid, nlink: uint64(st.Nlink)}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			n.link, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.sum = sha256.Sum256(b)
		}
		n.xattrs = xattrString(p)
		m[p] = n
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return m
}

func xattrString(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return ""
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var sb strings.Builder
	for _, name := range names {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		vn, _ := unix.Lgetxattr(p, name, v)
		if vn < 0 {
			vn = 0
		}
		fmt.Fprintf(&sb, "%s=%q;", name, v[:vn])
	}
	return sb.String()
}

func diffSnapshots(before, after map[string]nodeInfo) []string {
	var diffs []string
	for p, b := range before {
		a, ok := after[p]
		if !ok {
			diffs = append(diffs, "removed "+p)
		} else if a != b {
			diffs = append(diffs, fmt.Sprintf("changed %s: %+v -> %+v", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, "added "+p)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// userXattrsSupported reports whether dir's filesystem takes user xattrs.
func userXattrsSupported(t testing.TB, dir string) bool {
	p := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	return unix.Setxattr(p, "user.probe", []byte("1"), 0) == nil
}

func lgetxattr(p, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func isWhiteoutAt(p string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false
	}
	return isWhiteout(&st)
}

// mkWhiteout creates a 0:0 character device, skipping the test where the
// kernel refuses it.
func mkWhiteout(t testing.TB, p string) {
	t.Helper()
	if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("cannot create a whiteout device as this user: %v", err)
		}
		t.Fatal(err)
	}
}

func statT(t testing.TB, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}
