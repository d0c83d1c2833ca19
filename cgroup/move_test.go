package cgroup

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCommonAncestor(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/vte.scope", "/user.slice/user-1000.slice/user@1000.service/app.slice/devbox.scope/devbox-1", "/user.slice/user-1000.slice/user@1000.service/app.slice"},
		{"/user.slice/user-1000.slice/session-3.scope", "/user.slice/user-1000.slice/user@1000.service/app.slice/devbox.scope/devbox-1", "/user.slice/user-1000.slice"},
		{"/a/b", "/a/b", "/a/b"},
		{"/a/b", "/a/b/c", "/a/b"},
		{"/ab", "/a", "/"},
		{"/", "/x", "/"},
	} {
		if got := CommonAncestor(c.a, c.b); got != c.want {
			t.Errorf("CommonAncestor(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}

// TestMayMove: a fake tree where the user owns user@1000.service but not
// the slice above it.
func TestMayMove(t *testing.T) {
	root := t.TempDir()
	uid := os.Getuid()
	mk := func(dir string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "cgroup.procs"), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("user.slice/user-1000.slice", 0o444) // read-only: "root's"
	mk("user.slice/user-1000.slice/session-3.scope", 0o644)
	mk("user.slice/user-1000.slice/user@1000.service/app.slice", 0o644)
	mk("user.slice/user-1000.slice/user@1000.service/app.slice/vte.scope", 0o644)
	mk("user.slice/user-1000.slice/user@1000.service/app.slice/devbox.scope/devbox-1", 0o644)
	box := "/user.slice/user-1000.slice/user@1000.service/app.slice/devbox.scope/devbox-1"
	for _, c := range []struct {
		from string
		uid  int
		want bool
	}{
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/vte.scope", uid, true},
		{"/user.slice/user-1000.slice/session-3.scope", uid, false},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/vte.scope", uid + 1, false},
		{"/elsewhere", uid, false},
	} {
		if got := MayMove(root, c.from, box, c.uid); got != c.want {
			t.Errorf("MayMove(%s, uid %d) = %v, want %v", c.from, c.uid, got, c.want)
		}
	}
}
