package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileEnv lays out tmp/root (the destination), tmp/outside/sentinel,
// tmp/outside/sub/ and tmp/lower (a lower layer with a symlink escaping it).
func hostileEnv(t testing.TB) (tmp, root string, opts Options) {
	tmp = newDir(t)
	root = filepath.Join(tmp, "root")
	for _, d := range []string{root, tmp + "/outside/sub", tmp + "/sibling", tmp + "/lower/d"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range map[string]string{
		tmp + "/outside/sentinel": "sentinel",
		tmp + "/lower/d/f":        "lower file",
	} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside", tmp+"/lower/esc"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", tmp+"/lower/abs"); err != nil {
		t.Fatal(err)
	}
	opts = Options{Lowers: []string{tmp + "/lower"}, IgnoreChownErrors: !isRoot(), Logf: t.Logf}
	return tmp, root, opts
}

func TestApplyHostile(t *testing.T) {
	const (
		unsafe  = iota // must fail with ErrUnsafePath
		anyErr         // must fail
		allowed        // must succeed (harmlessly)
	)
	esc := symlink("l", "../outside")
	for _, tc := range []struct {
		name  string
		ents  []tent
		want  int
		check func(t *testing.T, root string)
	}{
		{"dotdot", []tent{reg("../x", "x")}, unsafe, nil},
		{"nested dotdot", []tent{reg("a/../../x", "x")}, unsafe, nil},
		{"dotdot to sibling", []tent{reg("../outside/sentinel", "pwned")}, unsafe, nil},
		{"absolute dotdot", []tent{reg("/../outside/sentinel", "pwned")}, unsafe, nil},
		{"dot dotdot", []tent{reg("./../x", "x")}, unsafe, nil},
		{"dotdot dir", []tent{dir("../outside/")}, unsafe, nil},
		{"dotdot symlink", []tent{symlink("../outside/sl", "x")}, unsafe, nil},
		{"dotdot fifo", []tent{{typ: tar.TypeFifo, name: "../outside/p"}}, unsafe, nil},
		{"symlink to root then write", []tent{symlink("l", "/"), reg("l/x", "x")}, unsafe, nil},
		{"symlink to root then tmp", []tent{symlink("l", "/"), reg("l/tmp/x", "x")}, unsafe, nil},
		{"write through symlink", []tent{esc, reg("l/sentinel", "pwned")}, unsafe, nil},
		{"new file through symlink", []tent{esc, reg("l/new", "pwned")}, unsafe, nil},
		{"dir through symlink", []tent{esc, dir("l/sub/")}, unsafe, nil},
		{"symlink through symlink", []tent{esc, symlink("l/s", "x")}, unsafe, nil},
		{"fifo through symlink", []tent{esc, {typ: tar.TypeFifo, name: "l/p"}}, unsafe, nil},
		{"chain of symlinks", []tent{symlink("a", "b"), symlink("b", "../outside"), reg("a/x", "x")}, unsafe, nil},
		{"symlink up the tree", []tent{dir("d/"), symlink("d/up", "../../.."), reg("d/up/outside/sentinel", "pwned")}, unsafe, nil},
		{"absolute symlink dir", []tent{symlink("etc", "/etc"), reg("etc/passwd", "pwned")}, unsafe, nil},
		{"hardlink outside", []tent{hardlink("h", "../outside/sentinel")}, unsafe, nil},
		{"hardlink absolute outside", []tent{hardlink("h", "/../outside/sentinel")}, unsafe, nil},
		{"hardlink through symlink", []tent{esc, hardlink("h", "l/sentinel")}, unsafe, nil},
		{"hardlink name through symlink", []tent{esc, reg("f", "f"), hardlink("l/h", "f")}, unsafe, nil},
		{"hardlink through lower symlink", []tent{hardlink("h", "esc/sentinel")}, unsafe, nil},
		{"hardlink through lower absolute symlink", []tent{hardlink("h", "abs/etc/passwd")}, unsafe, nil},
		{"hardlink to root", []tent{hardlink("h", "./")}, unsafe, nil},
		{"hardlink to dotdot", []tent{hardlink("h", "..")}, unsafe, nil},
		{"whiteout outside", []tent{reg("../.wh.sentinel", "")}, unsafe, nil},
		{"whiteout outside dir", []tent{reg("../outside/.wh.sentinel", "")}, unsafe, nil},
		{"whiteout through symlink", []tent{esc, reg("l/.wh.sentinel", "")}, unsafe, nil},
		{"whiteout of dotdot", []tent{reg(".wh..", "")}, unsafe, nil},
		{"whiteout of dot", []tent{reg("d/.wh..", "")}, unsafe, nil},
		{"whiteout of nothing", []tent{reg(".wh.", "")}, unsafe, nil},
		{"opaque through symlink", []tent{esc, reg("l/.wh..wh..opq", "")}, unsafe, nil},
		{"opaque outside", []tent{reg("../outside/.wh..wh..opq", "")}, unsafe, nil},
		{"file named root", []tent{reg(".", "x")}, unsafe, nil},
		{"symlink named root", []tent{symlink("a/..", "/outside")}, unsafe, nil},
		{"long name", []tent{reg(strings.Repeat("a/", 2100)+"x", "x")}, anyErr, nil},
		{"long component", []tent{reg(strings.Repeat("a", 300), "x")}, anyErr, nil},
		{"file under file", []tent{reg("f", "f"), reg("f/x", "x")}, anyErr, nil},
		{"dir over symlink", []tent{esc, dir("l/")}, allowed, func(t *testing.T, root string) {
			if fi, err := os.Lstat(filepath.Join(root, "l")); err != nil || !fi.IsDir() {
				t.Errorf("l is not a directory: %v %v", fi, err)
			}
		}},
		{"dir over symlink with mode", []tent{esc, {typ: tar.TypeDir, name: "l", mode: 0o700}, reg("l/x", "x")}, allowed, nil},
		{"file over symlink", []tent{symlink("l", "../outside/sentinel"), reg("l", "replaced")}, allowed, nil},
		{"fifo over symlink", []tent{symlink("l", "../outside/sentinel"), {typ: tar.TypeFifo, name: "l"}}, allowed, nil},
		{"hardlink to symlink", []tent{symlink("s", "../outside/sentinel"), hardlink("h", "s")}, allowed, func(t *testing.T, root string) {
			if got, err := os.Readlink(filepath.Join(root, "h")); err != nil || got != "../outside/sentinel" {
				t.Errorf("h -> %q, %v", got, err)
			}
		}},
		{"hardlink over symlink", []tent{reg("f", "f"), symlink("s", "../outside/sentinel"), hardlink("s", "f")}, allowed, nil},
		{"whiteout over symlink", []tent{symlink("s", "../outside/sentinel"), reg(".wh.s", "")}, allowed, nil},
		{"absolute symlinks", []tent{symlink("abs", "/etc/passwd"), symlink("up", "../../../../outside"), symlink("d/abs", "/")}, allowed, func(t *testing.T, root string) {
			if got, err := os.Readlink(filepath.Join(root, "abs")); err != nil || got != "/etc/passwd" {
				t.Errorf("abs -> %q, %v", got, err)
			}
		}},
		{"chmod through symlink", []tent{symlink("l", "../outside"), {typ: tar.TypeDir, name: "d", mode: 0o700}, symlink("d", "../outside")}, allowed, nil},
		{"dotdot inside", []tent{reg("a/../b", "b"), reg("c/./d/../e", "e")}, allowed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp, root, opts := hostileEnv(t)
			before := snapshot(t, tmp, root)
			_, err := Apply(root, bytes.NewReader(buildTar(t, tc.ents...)), opts)
			t.Logf("Apply: %v", err)
			switch tc.want {
			case unsafe:
				if !errors.Is(err, ErrUnsafePath) {
					t.Errorf("err = %v, want ErrUnsafePath", err)
				}
			case anyErr:
				if err == nil {
					t.Errorf("Apply succeeded")
				}
			case allowed:
				if err != nil {
					t.Errorf("Apply: %v", err)
				}
			}
			if err != nil && !strings.Contains(err.Error(), "unpacking entry ") {
				t.Errorf("error does not name the entry: %v", err)
			}
			if d := diffSnapshots(before, snapshot(t, tmp, root)); len(d) > 0 {
				t.Errorf("outside of the root changed:\n%s", strings.Join(d, "\n"))
			}
			if tc.check != nil {
				tc.check(t, root)
			}
		})
	}
}
