package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func apply(t *testing.T, root string, opts Options, ents ...tent) (Stats, error) {
	t.Helper()
	return Apply(root, bytes.NewReader(buildTar(t, ents...)), opts)
}

func mustApply(t *testing.T, root string, opts Options, ents ...tent) Stats {
	t.Helper()
	st, err := apply(t, root, opts, ents...)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return st
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyNodes(t *testing.T) {
	root := newDir(t)
	var notes []string
	opts := testOptions(t)
	opts.Logf = func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
	st := mustApply(t, root, opts,
		dir("./"),
		dir("usr/"),
		dir("usr/bin/"),
		reg("usr/bin/tool", "#!/bin/sh\n"),
		symlink("usr/bin/alias", "tool"),
		symlink("abs", "/etc/passwd"),
		hardlink("usr/bin/tool2", "usr/bin/tool"),
		hardlink("/usr/bin/tool3", "./usr/bin/tool"),
		tent{typ: tar.TypeFifo, name: "run/fifo", mode: 0o620},
		tent{typ: tar.TypeChar, name: "dev/null", major: 1, minor: 3},
		tent{typ: tar.TypeBlock, name: "dev/sda", major: 8},
		reg("/etc/hostname", "box\n"),
		reg("x/../y", "y"),
		reg("empty", ""),
	)
	want := Stats{Files: 5, Dirs: 3, Symlinks: 2, Hardlinks: 2, Skipped: 2, Bytes: 10 + 4 + 1}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	if got := readFile(t, filepath.Join(root, "usr/bin/tool")); got != "#!/bin/sh\n" {
		t.Errorf("tool = %q", got)
	}
	for link, target := range map[string]string{"usr/bin/alias": "tool", "abs": "/etc/passwd"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != target {
			t.Errorf("readlink %s = %q, %v; want %q", link, got, err, target)
		}
	}
	ino := statT(t, filepath.Join(root, "usr/bin/tool")).Ino
	for _, l := range []string{"usr/bin/tool2", "usr/bin/tool3"} {
		if statT(t, filepath.Join(root, l)).Ino != ino {
			t.Errorf("%s is not a hard link to usr/bin/tool", l)
		}
	}
	if st := statT(t, filepath.Join(root, "usr/bin/tool")); st.Nlink != 3 {
		t.Errorf("nlink = %d, want 3", st.Nlink)
	}
	fi, err := os.Lstat(filepath.Join(root, "run/fifo"))
	if err != nil || fi.Mode()&fs.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o620 {
		t.Errorf("fifo: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "dev/null")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("device node created: %v", err)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "device node") {
		t.Errorf("no note about the skipped device: %q", notes)
	}
	if got := readFile(t, filepath.Join(root, "etc/hostname")); got != "box\n" {
		t.Errorf("etc/hostname = %q", got)
	}
	if got := readFile(t, filepath.Join(root, "y")); got != "y" {
		t.Errorf("y = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "x")); err == nil {
		t.Errorf("x/../y created x")
	}
}

func TestApplyWhiteouts(t *testing.T) {
	root := newDir(t)
	xattrs := userXattrsSupported(t, root)
	ents := []tent{
		reg(".wh.gone", ""),
		dir("d/"),
		reg("d/.wh.file", ""),
		reg("same", "x"),
		dir("samedir/"),
		reg("samedir/child", "c"),
		reg(".wh.same", ""),
		reg(".wh.samedir", ""),
		reg("d/.wh..wh.plnk", ""),
		reg("back", "1"),
		reg(".wh.back", ""),
		reg("back", "2"), // replaces the whiteout
	}
	if xattrs {
		ents = append(ents,
			dir("o/"),
			reg("o/keep", "k"),
			reg("o/.wh..wh..opq", ""),
			reg("implicit/.wh..wh..opq", ""),
			reg(".wh.re", ""),
			reg("re/new", "n"), // directory recreated under a whiteout: opaque
			reg(".wh.re2", ""),
			dir("re2/"),
		)
	}
	st := mustApply(t, root, testOptions(t), ents...)
	for _, p := range []string{"gone", "d/file", "same", "samedir"} {
		if !isWhiteoutAt(filepath.Join(root, p)) {
			t.Errorf("%s is not a 0:0 character device", p)
		}
	}
	if got := readFile(t, filepath.Join(root, "back")); got != "2" {
		t.Errorf("back = %q", got)
	}
	for _, p := range []string{".wh.gone", "d/.wh.file", "d/.wh..wh.plnk", "d/plnk"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s exists", p)
		}
	}
	wantWhiteouts := 5
	if xattrs {
		wantWhiteouts = 7
	}
	if st.Whiteouts != wantWhiteouts || st.Skipped != 1 {
		t.Errorf("stats = %+v", st)
	}
	if !xattrs {
		t.Skip("skipping opaque directory checks: the filesystem of TempDir refuses user xattrs")
	}
	if st.Opaques != 2 {
		t.Errorf("opaques = %d, want 2", st.Opaques)
	}
	for _, p := range []string{"o", "implicit", "re", "re2"} {
		if v, err := lgetxattr(filepath.Join(root, p), opaqueXattr); err != nil || v != "y" {
			t.Errorf("%s: %s = %q, %v; want y", p, opaqueXattr, v, err)
		}
	}
	if got := readFile(t, filepath.Join(root, "o/keep")); got != "k" {
		t.Errorf("o/keep = %q", got)
	}
	if _, err := lgetxattr(filepath.Join(root, "d"), opaqueXattr); err == nil {
		t.Errorf("d is opaque")
	}
}

func TestApplyReplace(t *testing.T) {
	root := newDir(t)
	outside := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustApply(t, root, testOptions(t),
		reg("a", "file"),
		dir("a/"),
		reg("a/x", "x"),
		dir("b/"),
		dir("b/deep/"),
		tent{typ: tar.TypeDir, name: "b/deep/deeper/", mode: 0o500},
		reg("b/deep/f", "f"),
		reg("b", "now a file"),
		dir("m/"),
		reg("m/1", "1"),
		tent{typ: tar.TypeDir, name: "m/", mode: 0o700},
		reg("m/2", "2"),
		symlink("s", outside),
		reg("s", "not through the link"),
		reg("t", "file"),
		symlink("t", "elsewhere"),
		symlink("u", "one"),
		symlink("u", "two"),
		tent{typ: tar.TypeFifo, name: "p"},
		reg("p", "regular"),
		reg("h1", "h"),
		hardlink("h2", "h1"),
		hardlink("h2", "h1"), // duplicate
		hardlink("h1", "h1"), // to itself
	)
	if fi, err := os.Lstat(filepath.Join(root, "a")); err != nil || !fi.IsDir() {
		t.Errorf("a: %v %v", fi, err)
	}
	if got := readFile(t, filepath.Join(root, "b")); got != "now a file" {
		t.Errorf("b = %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(root, "m")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("m: %v %v", fi, err)
	}
	for _, p := range []string{"m/1", "m/2"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("merge lost %s: %v", p, err)
		}
	}
	if got := readFile(t, filepath.Join(root, "s")); got != "not through the link" {
		t.Errorf("s = %q", got)
	}
	if got := readFile(t, outside); got != "keep" {
		t.Errorf("wrote through a symlink: %q", got)
	}
	if got, _ := os.Readlink(filepath.Join(root, "t")); got != "elsewhere" {
		t.Errorf("t -> %q", got)
	}
	if got, _ := os.Readlink(filepath.Join(root, "u")); got != "two" {
		t.Errorf("u -> %q", got)
	}
	if got := readFile(t, filepath.Join(root, "p")); got != "regular" {
		t.Errorf("p = %q", got)
	}
	if st := statT(t, filepath.Join(root, "h1")); st.Nlink != 2 {
		t.Errorf("h1 nlink = %d, want 2", st.Nlink)
	}
}

func TestApplyMetadata(t *testing.T) {
	root := newDir(t)
	mtime := time.Unix(1600000000, 987654321)
	atime := time.Unix(1500000000, 5)
	dmtime := time.Unix(1400000000, 0)
	uid, gid := 1234, 5678
	if !isRoot() {
		uid, gid = os.Getuid(), os.Getgid()
	}
	xattrs := userXattrsSupported(t, root)
	var notes []string
	var mu sync.Mutex
	opts := testOptions(t)
	opts.Logf = func(f string, a ...any) {
		mu.Lock()
		notes = append(notes, fmt.Sprintf(f, a...))
		mu.Unlock()
	}
	mustApply(t, root, opts,
		tent{typ: tar.TypeDir, name: "./", mode: 0o751, mtime: dmtime},
		tent{typ: tar.TypeDir, name: "ro/", mode: 0o555, mtime: dmtime, uid: uid, gid: gid},
		tent{typ: tar.TypeDir, name: "ro/sub/", mode: 0o500, mtime: dmtime},
		reg("ro/sub/f", "written after the read-only dirs"),
		tent{typ: tar.TypeReg, name: "ro/suid", body: "s", mode: 0o4755, uid: uid, gid: gid, mtime: mtime, atime: atime},
		tent{typ: tar.TypeReg, name: "sgid", mode: 0o2711, uid: uid, gid: gid},
		tent{typ: tar.TypeDir, name: "tmp/", mode: 0o1777},
		tent{typ: tar.TypeSymlink, name: "lnk", link: "ro/suid", mtime: mtime, uid: uid, gid: gid},
		tent{typ: tar.TypeReg, name: "x", body: "x", xattrs: map[string]string{
			"user.test":           "hello",
			"trusted.secret":      "no",
			"security.selinux":    "system_u:object_r:etc_t:s0",
			"user.overlay.opaque": "y",
		}},
		tent{typ: tar.TypeDir, name: "xd/", xattrs: map[string]string{"user.dir": "d"}},
	)
	check := func(p string, perm fs.FileMode, mt time.Time) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); perm != 0 && got != perm {
			t.Errorf("%s: mode %v, want %v", p, got, perm)
		}
		if !fi.ModTime().Equal(mt) {
			t.Errorf("%s: mtime %v, want %v", p, fi.ModTime(), mt)
		}
	}
	check(".", 0o751, dmtime)
	check("ro", 0o555, dmtime)
	check("ro/sub", 0o500, dmtime)
	check("ro/suid", 0o755|fs.ModeSetuid, mtime)
	check("sgid", 0o711|fs.ModeSetgid, testTime)
	check("tmp", 0o777|fs.ModeSticky, testTime)
	check("lnk", 0, mtime)
	st := statT(t, filepath.Join(root, "ro/suid"))
	if got := time.Unix(st.Atim.Sec, st.Atim.Nsec); !got.Equal(atime) {
		t.Errorf("atime %v, want %v", got, atime)
	}
	if isRoot() {
		for _, p := range []string{"ro", "ro/suid", "sgid", "lnk"} {
			st := statT(t, filepath.Join(root, p))
			if int(st.Uid) != uid || int(st.Gid) != gid {
				t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
			}
		}
		if st := statT(t, filepath.Join(root, "x")); st.Uid != 0 || st.Gid != 0 {
			t.Errorf("x: owner %d:%d, want 0:0", st.Uid, st.Gid)
		}
	}
	joined := strings.Join(notes, "\n")
	for _, dropped := range []string{"trusted.secret", "security.selinux", "user.overlay.opaque"} {
		if !strings.Contains(joined, dropped) {
			t.Errorf("no note about dropped xattr %s in %q", dropped, notes)
		}
	}
	if !xattrs {
		t.Skip("skipping xattr checks: the filesystem of TempDir refuses user xattrs")
	}
	if v, err := lgetxattr(filepath.Join(root, "x"), "user.test"); err != nil || v != "hello" {
		t.Errorf("user.test = %q, %v", v, err)
	}
	if v, err := lgetxattr(filepath.Join(root, "xd"), "user.dir"); err != nil || v != "d" {
		t.Errorf("user.dir = %q, %v", v, err)
	}
	if _, err := lgetxattr(filepath.Join(root, "x"), opaqueXattr); err == nil {
		t.Errorf("forged %s applied", opaqueXattr)
	}
}

func TestApplyHardlinkToLower(t *testing.T) {
	tmp := newDir(t)
	xattrs := userXattrsSupported(t, tmp)
	lower := filepath.Join(tmp, "lower")
	upper := filepath.Join(tmp, "upper") // a lower above "lower"
	for _, d := range []string{lower + "/usr/bin", lower + "/etc", upper + "/usr", upper + "/other"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string, mode fs.FileMode) {
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	mt := time.Unix(1300000000, 42)
	write(lower+"/usr/bin/tool", "lower tool", 0o755|fs.ModeSetuid)
	os.Chtimes(lower+"/usr/bin/tool", mt, mt)
	if xattrs {
		if err := setxattr(lower+"/usr/bin/tool", "user.origin", "lower"); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(lower+"/usr/bin", 0o711)
	os.Chtimes(lower+"/usr/bin", mt, mt)
	write(lower+"/etc/shadowed", "lower", 0o644)
	write(upper+"/usr/shadow", "x", 0o644)
	os.MkdirAll(lower+"/usr/shadow", 0o755)
	write(lower+"/usr/shadow/f", "hidden by a file above", 0o644)
	write(lower+"/etc/both", "lower both", 0o644)
	os.MkdirAll(upper+"/etc", 0o700)
	write(upper+"/etc/both", "upper both", 0o640)
	mkWhiteout(t, upper+"/etc/shadowed")
	os.MkdirAll(lower+"/opq", 0o755)
	write(lower+"/opq/f", "hidden by opaque", 0o644)
	write(lower+"/opq/visible", "v", 0o644)
	if err := os.Symlink("../..", lower+"/sym"); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	opts.Lowers = []string{upper, lower}

	root := filepath.Join(tmp, "root")
	os.Mkdir(root, 0o755)
	st := mustApply(t, root, opts,
		hardlink("bin/t", "usr/bin/tool"),
		hardlink("both2", "etc/both"),
	)
	if st.Hardlinks != 2 {
		t.Errorf("stats %+v", st)
	}
	if got := readFile(t, filepath.Join(root, "usr/bin/tool")); got != "lower tool" {
		t.Errorf("copied up content %q", got)
	}
	if statT(t, filepath.Join(root, "usr/bin/tool")).Ino != statT(t, filepath.Join(root, "bin/t")).Ino {
		t.Errorf("bin/t is not linked to the copy")
	}
	fi, _ := os.Lstat(filepath.Join(root, "usr/bin/tool"))
	if fi.Mode() != 0o755|fs.ModeSetuid || !fi.ModTime().Equal(mt) {
		t.Errorf("copy metadata: %v %v", fi.Mode(), fi.ModTime())
	}
	fi, _ = os.Lstat(filepath.Join(root, "usr/bin"))
	if fi.Mode().Perm() != 0o711 || !fi.ModTime().Equal(mt) {
		t.Errorf("copied parent metadata: %v %v", fi.Mode(), fi.ModTime())
	}
	fi, _ = os.Lstat(filepath.Join(root, "etc"))
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("parent taken from the wrong layer: %v", fi.Mode())
	}
	if got := readFile(t, filepath.Join(root, "both2")); got != "upper both" {
		t.Errorf("top-most lower not preferred: %q", got)
	}
	if xattrs {
		if v, err := lgetxattr(filepath.Join(root, "usr/bin/tool"), "user.origin"); err != nil || v != "lower" {
			t.Errorf("copied xattr = %q, %v", v, err)
		}
	}

	// Lookups that must fail.
	os.Mkdir(upper+"/opq", 0o755)
	opaqueOK := xattrs && setxattr(upper+"/opq", opaqueXattr, "y") == nil
	for _, tc := range []struct {
		name string
		ents []tent
		skip bool
	}{
		{"whiteout in a lower", []tent{hardlink("l", "etc/shadowed")}, false},
		{"non-dir in a lower", []tent{hardlink("l", "usr/shadow/f")}, false},
		{"opaque in a lower", []tent{hardlink("l", "opq/f")}, !opaqueOK},
		{"whiteout in this layer", []tent{reg(".wh.etc", ""), hardlink("l", "etc/both")}, false},
		{"missing", []tent{hardlink("l", "nowhere")}, false},
		{"directory", []tent{hardlink("l", "usr/bin")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("user xattrs unsupported")
			}
			root := newDir(t)
			if _, err := apply(t, root, opts, tc.ents...); err == nil {
				t.Errorf("Apply succeeded")
			} else {
				t.Log(err)
			}
		})
	}
	t.Run("visible beside opaque", func(t *testing.T) {
		if !opaqueOK {
			t.Skip("user xattrs unsupported")
		}
		root := newDir(t)
		if _, err := apply(t, root, opts, hardlink("l", "opq/visible")); err == nil {
			t.Errorf("opq/visible found below an opaque dir")
		}
	})
	t.Run("symlink in a lower", func(t *testing.T) {
		root := newDir(t)
		_, err := apply(t, root, opts, hardlink("l", "sym/etc/passwd"))
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("err = %v, want ErrUnsafePath", err)
		}
	})
}

func setxattr(p, name, value string) error {
	return unix.Setxattr(p, name, []byte(value), 0)
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestApplyDrainsReader(t *testing.T) {
	data := buildTar(t, reg("a", strings.Repeat("a", 5000)), dir("d/"))
	data = append(data, make([]byte, 100<<10)...) // trailing zero blocks
	cr := &countReader{r: bytes.NewReader(data)}
	if _, err := Apply(newDir(t), cr, testOptions(t)); err != nil {
		t.Fatal(err)
	}
	if cr.n != int64(len(data)) {
		t.Errorf("read %d of %d bytes", cr.n, len(data))
	}
}

func TestApplyErrors(t *testing.T) {
	root := newDir(t)
	_, err := apply(t, root, testOptions(t), reg("../../etc/passwd", "x"))
	if !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("err = %v", err)
	}
	if got, want := err.Error(), `unpacking entry "../../etc/passwd": path escapes the layer root`; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	// A truncated stream fails.
	data := buildTar(t, reg("a", strings.Repeat("a", 5000)))
	if _, err := Apply(newDir(t), bytes.NewReader(data[:1500]), testOptions(t)); err == nil {
		t.Errorf("truncated tar accepted")
	}
	// A missing destination fails.
	if _, err := Apply(filepath.Join(root, "missing"), bytes.NewReader(data), testOptions(t)); err == nil {
		t.Errorf("missing destination accepted")
	}
	// Without IgnoreChownErrors a normal user cannot give files to root.
	if !isRoot() {
		_, err := apply(t, newDir(t), Options{}, reg("a", "a"))
		if err == nil || !strings.Contains(err.Error(), "lchown") {
			t.Errorf("chown error not reported: %v", err)
		}
	}
	// A regular file under a regular file.
	if _, err := apply(t, newDir(t), testOptions(t), reg("f", ""), reg("f/g", "")); err == nil {
		t.Errorf("file under a file accepted")
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"a":         "a",
		"a/b":       "a/b",
		"/a/b/":     "a/b",
		"./a//b/.":  "a/b",
		"a/../b":    "b",
		"./":        "",
		"/":         "",
		"a/b/../..": "",
		"...":       "...",
		"..a/b..":   "..a/b..",
	} {
		got, err := cleanName(in)
		if err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../a", "a/../..", "/../a", "./../a", "a/../../b", "a\x00b"} {
		if _, err := cleanName(in); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("cleanName(%q): err = %v, want ErrUnsafePath", in, err)
		}
	}
}
