package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestApplyDirModes: a directory ends with exactly the mode of its entry
// (the last one, if listed twice), applied after its children are written,
// so that read-only and inaccessible directories can still be filled.
func TestApplyDirModes(t *testing.T) {
	const special = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	for _, c := range []struct {
		name string
		mode int64
		want fs.FileMode
	}{
		{"read-only", 0o555, 0o555},
		// The helper reads mode 0 as "default": c_ISDIR (which tars
		// may carry in the mode field, and Apply ignores) makes it 0000.
		{"no access", 0o40000, 0},
		{"owner only", 0o700, 0o700},
		{"write-only search", 0o311, 0o311},
		{"sticky", 0o1777, 0o777 | fs.ModeSticky},
		{"setgid", 0o2755, 0o755 | fs.ModeSetgid},
		{"setuid bit on a dir", 0o4750, 0o750 | fs.ModeSetuid},
		{"all bits", 0o7777, 0o777 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := newDir(t)
			mtime := time.Unix(1500000000, 0)
			mustApply(t, root, testOptions(t),
				tent{typ: tar.TypeDir, name: "d/", mode: c.mode, mtime: mtime},
				tent{typ: tar.TypeDir, name: "d/sub/", mode: c.mode, mtime: mtime},
				reg("d/sub/f", "child written after its parents' entries"),
				reg("d/g", "g"),
				tent{typ: tar.TypeSymlink, name: "d/l", link: "g"},
				tent{typ: tar.TypeFifo, name: "d/p", mode: 0o600},
				// A directory listed twice: the last entry wins.
				tent{typ: tar.TypeDir, name: "twice/", mode: 0o755},
				reg("twice/x", "x"),
				tent{typ: tar.TypeDir, name: "twice/", mode: c.mode, mtime: mtime},
				// The layer root itself.
				tent{typ: tar.TypeDir, name: "./", mode: c.mode, mtime: mtime},
			)
			t.Cleanup(func() { os.Chmod(root, 0o700); chmodDirs(root) })
			// Parents first; each is opened up once its mode is recorded,
			// so that the test (not root) can look below it.
			for _, p := range []string{".", "d", "d/sub", "twice"} {
				fi, err := os.Lstat(filepath.Join(root, p))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & special; !fi.IsDir() || got != c.want {
					t.Errorf("%s: mode %v, want %v", p, got, c.want)
				}
				if !fi.ModTime().Equal(mtime) {
					t.Errorf("%s: mtime %v, want %v", p, fi.ModTime(), mtime)
				}
				os.Chmod(filepath.Join(root, p), 0o700)
			}
			// The children are all there.
			for _, p := range []string{"d/sub/f", "d/g", "d/l", "d/p", "twice/x"} {
				if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			}
		})
	}
}

// TestApplyCheckSize: sparse files count at their logical size; CheckSize
// stops a sparse bomb long before its holes are produced.
func TestApplyCheckSize(t *testing.T) {
	root := newDir(t)
	errOver := errors.New("over the limit")
	var last int64
	opts := testOptions(t)
	opts.CheckSize = func(expanded int64) error {
		last = expanded
		if expanded > 256<<20 {
			return errOver
		}
		return nil
	}
	start := time.Now()
	_, err := Apply(root, bytes.NewReader(sparseTar("bomb", 1<<40)), opts)
	if !errors.Is(err, errOver) {
		t.Fatalf("err = %v, want the CheckSize error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stopped after %v", el)
	}
	if last <= 256<<20 || last > 512<<20 {
		t.Errorf("last expansion reported %d", last)
	}
	// A sparse file within the limit is written whole, with its hole.
	root = newDir(t)
	if _, err := Apply(root, bytes.NewReader(sparseTar("ok", 100<<20)), opts); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "ok")); err != nil || fi.Size() != 100<<20 {
		t.Errorf("ok: %v %v", fi, err)
	}
}

func TestParseIDMap(t *testing.T) {
	keepID := "         0     200000       1000\n      1000       1000          1\n      1001     201000      64536\n"
	for _, c := range []struct {
		name, m     string
		id          int
		mapped      bool
		desc        string
		count, next int
	}{
		{"keep-id inside", keepID, 1000, true, "0-65536", 65537, 327680},
		{"keep-id first", keepID, 0, true, "0-65536", 65537, 327680},
		{"keep-id last", keepID, 65536, true, "0-65536", 65537, 327680},
		{"keep-id beyond", keepID, 65537, false, "0-65536", 65537, 327680},
		{"single", "0 1000 1\n", 5, false, "0", 1, 65536},
		{"gap", "0 100000 10\n20 2000 10\n", 15, false, "0-9, 20-29", 20, 131072},
		{"garbage", "x y z\n", 1, false, "none", 0, 0},
	} {
		m := parseIDMap(c.m, c.id)
		if m.mapped != c.mapped || m.desc != c.desc || m.count != c.count || m.next != c.next {
			t.Errorf("%s: parseIDMap(%d) = %+v; want %v, %q, %d, %d", c.name, c.id, m, c.mapped, c.desc, c.count, c.next)
		}
	}
	for _, c := range []struct {
		e    IDRangeError
		want []string
	}{
		{IDRangeError{Kind: "uid", ID: 70000, Mapped: "0-65536", Count: 65537, Next: 327680},
			[]string{"uid 70000", "(0-65536)", "give your user 65536 more subordinate ids in /etc/subuid", "--add-subuids 327680-393215 --add-subgids 327680-393215", "hint:"}},
		{IDRangeError{Kind: "gid", ID: 200000, Mapped: "0-65536", Count: 65537, Next: 0},
			[]string{"gid 200000", "196608 more subordinate ids in /etc/subgid", "--add-subuids 100000-296607"}},
	} {
		msg := c.e.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("IDRangeError %q lacks %q", msg, w)
			}
		}
	}
}
