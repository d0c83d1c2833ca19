package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckChain(t *testing.T) {
	const me = 1000
	dir := func(p string, uid int, perm fs.FileMode) pathDir {
		return pathDir{Path: p, UID: uid, Mode: fs.ModeDir | perm}
	}
	sticky := func(p string, uid int, perm fs.FileMode) pathDir {
		return pathDir{Path: p, UID: uid, Mode: fs.ModeDir | fs.ModeSticky | perm}
	}
	missing := func(p string) pathDir { return pathDir{Path: p, Missing: true} }
	link := func(p string, uid int) pathDir { return pathDir{Path: p, UID: uid, Mode: fs.ModeSymlink | 0o777} }
	root := dir("/", 0, 0o755)
	for _, c := range []struct {
		name  string
		chain []pathDir
		want  string // "" = accepted; else a part of the error
	}{
		{"home store", []pathDir{root, dir("/home", 0, 0o755), dir("/home/u", me, 0o700), dir("/home/u/s", me, 0o700)}, ""},
		{"to be created", []pathDir{root, dir("/home", 0, 0o755), dir("/home/u", me, 0o755), missing("/home/u/.local"), missing("/home/u/.local/s")}, ""},
		{"under /tmp, mine", []pathDir{root, sticky("/tmp", 0, 0o777), dir("/tmp/a", me, 0o700), dir("/tmp/a/s", me, 0o755)}, ""},
		{"under /tmp, to be created", []pathDir{root, sticky("/tmp", 0, 0o777), missing("/tmp/s")}, ""},
		{"store of another user", []pathDir{root, sticky("/tmp", 0, 0o777), dir("/tmp/s", 1001, 0o700)}, "belongs to uid 1001"},
		{"store root's", []pathDir{root, dir("/srv", 0, 0o755), dir("/srv/s", 0, 0o755)}, "belongs to uid 0"},
		{"store writable by others", []pathDir{root, dir("/home", 0, 0o755), dir("/home/u", me, 0o700), dir("/home/u/s", me, 0o777)}, "chmod 700 /home/u/s"},
		{"store group-writable", []pathDir{root, dir("/home", 0, 0o755), dir("/home/u", me, 0o700), dir("/home/u/s", me, 0o770)}, "writable by others"},
		{"parent world-writable, no sticky", []pathDir{root, dir("/srv", 0, 0o755), dir("/srv/drop", me, 0o777), dir("/srv/drop/s", me, 0o700)}, "chmod go-w /srv/drop"},
		{"parent of another user, 0777", []pathDir{root, dir("/srv", 0, 0o755), dir("/srv/drop", 1001, 0o777), missing("/srv/drop/s")}, "belongs to uid 1001"},
		{"parent root's, writable, no sticky", []pathDir{root, dir("/srv", 0, 0o777), missing("/srv/s")}, "keep the store in a directory of yours"},
		{"parent of another user", []pathDir{root, dir("/home", 0, 0o755), dir("/home/v", 1001, 0o755), dir("/home/v/s", me, 0o700)}, "belongs to uid 1001"},
		{"below /tmp, root's", []pathDir{root, sticky("/tmp", 0, 0o777), dir("/tmp/r", 0, 0o755), dir("/tmp/r/s", me, 0o700)}, "is in the shared directory /tmp"},
		{"below /tmp, writable", []pathDir{root, sticky("/tmp", 0, 0o777), dir("/tmp/a", me, 0o777), dir("/tmp/a/s", me, 0o700)}, "chmod go-w /tmp/a"},
		{"below /tmp, sticky and writable", []pathDir{root, sticky("/tmp", 0, 0o777), sticky("/tmp/a", me, 0o777), dir("/tmp/a/s", me, 0o700)}, "chmod go-w /tmp/a"},
		{"a link of the user's", []pathDir{root, dir("/home", 0, 0o755), dir("/home/u", me, 0o700), link("/home/u/s", me)}, ""},
		{"a link of another user", []pathDir{root, sticky("/tmp", 0, 0o777), link("/tmp/s", 1001)}, "belongs to uid 1001"},
		{"a file", []pathDir{root, dir("/home", 0, 0o755), {Path: "/home/s", UID: me, Mode: 0o600}}, "not a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkChain(c.chain, me, -1)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("accepted, want %q", c.want)
			case c.want != "" && (!strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrUnsafeStore) || !strings.Contains(err.Error(), "hint:")):
				t.Fatalf("error %q, want %q, ErrUnsafeStore and a hint", err, c.want)
			}
		})
	}
}

// TestOpenRefusesSharedParent: a store in a world-writable directory
// without the sticky bit is refused before anything is written.
func TestOpenRefusesSharedParent(t *testing.T) {
	base := t.TempDir()
	drop := filepath.Join(base, "drop")
	if err := os.Mkdir(drop, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(drop, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Open(filepath.Join(drop, "store"))
	if !errors.Is(err, ErrUnsafeStore) {
		t.Fatalf("Open = %v, want ErrUnsafeStore", err)
	}
	if ents, _ := os.ReadDir(drop); len(ents) != 0 {
		t.Fatalf("written in the refused directory: %v", ents)
	}
	// Created 0700, parents too.
	st, err := Open(filepath.Join(base, "a", "b", "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b"), st.Root, st.LayersDir()} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, mode %v", p, err, fi.Mode())
		}
	}
}

func TestPrivateGroup(t *testing.T) {
	group := "root:x:0:\nalice:x:1000:\nbob:x:1001:bob\nstaff:x:50:alice,bob\ncarol:x:1002:dave\n"
	for _, tc := range []struct {
		name string
		gid  int
		want int
	}{
		{"alice", 1000, 1000},
		{"bob", 1001, 1001}, // itself as a member
		{"alice", 50, -1},   // a shared group
		{"carol", 1002, -1}, // another member
		{"alice", 1001, -1}, // another user's group
		{"alice", 4242, -1}, // not in the file
	} {
		if got := privateGID(group, tc.name, tc.gid); got != tc.want {
			t.Errorf("privateGID(%s, %d) = %d, want %d", tc.name, tc.gid, got, tc.want)
		}
	}
	// A group-writable directory of the user's private group passes; of
	// any other group it does not.
	chain := []pathDir{{Path: "/", Mode: fs.ModeDir | 0o755}, {Path: "/h", UID: 1000, GID: 1000, Mode: fs.ModeDir | 0o775}, {Path: "/h/s", UID: 1000, GID: 1000, Mode: fs.ModeDir | 0o700}}
	if err := checkChain(chain, 1000, 1000); err != nil {
		t.Errorf("private group: %v", err)
	}
	if err := checkChain(chain, 1000, -1); err == nil {
		t.Error("group-writable without a private group passed")
	}
	chain[1].GID = 50
	if err := checkChain(chain, 1000, 1000); err == nil {
		t.Error("group-writable by a shared group passed")
	}
}
