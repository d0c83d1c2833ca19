//go:build integration

package integration

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// otherUserDir is what test/provision.sh leaves of devboxtest2: a
// world-writable directory of theirs and, under a sticky directory, a store
// they made first.
const otherUserDir = "/var/lib/devbox-test/other-user"

// TestEscapeStoreNotYours: a store another user could change is refused
// with a hint, before anything is written there.
func TestEscapeStoreNotYours(t *testing.T) {
	e := newEnv(t)
	mine := t.TempDir()
	open := filepath.Join(mine, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	grouped := filepath.Join(mine, "grouped")
	os.Mkdir(grouped, 0o700)
	os.Chmod(grouped, 0o770)
	cases := []struct {
		name, store, want string
		empty             string // a directory that must stay empty
	}{
		{"a world-writable parent", filepath.Join(open, "store"), "chmod go-w " + open, open},
		{"a world-writable store", open, "chmod 700 " + open, open},
	}
	// Group-writable is refused unless the group is the user's private
	// group (docs/security.md), which useradd gives devboxtest.
	private := privateGroupOf(t, grouped)
	if !private {
		cases = append(cases, struct{ name, store, want, empty string }{"a group-writable store", grouped, "chmod 700 " + grouped, grouped})
	}
	if fi, err := os.Stat(filepath.Join(otherUserDir, "shared")); err == nil && fi.Mode().Perm() == 0o777 {
		shared := filepath.Join(otherUserDir, "shared")
		cases = append(cases,
			struct{ name, store, want, empty string }{"another user's 0777 directory", filepath.Join(shared, "store-"+filepath.Base(mine)), "above the store", shared},
			struct{ name, store, want, empty string }{"a store squatted under a sticky directory", filepath.Join(otherUserDir, "sticky", "store"), "not to you", filepath.Join(otherUserDir, "sticky", "store")},
		)
	} else {
		t.Logf("no %s (test/provision.sh makes it): another user's directories not tried", otherUserDir)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := os.ReadDir(c.empty)
			r := e.run("--store", c.store, "images")
			if r.code != 125 || !strings.Contains(r.stderr, "not yours alone") || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "hint:") {
				t.Errorf("devbox --store %s images: exit %d, stderr %q; want 125, a refusal naming %q and a hint", c.store, r.code, r.stderr, c.want)
			}
			after, _ := os.ReadDir(c.empty)
			if len(after) != len(before) {
				t.Errorf("something was written in %s: %d entries before, %d after", c.empty, len(before), len(after))
			}
		})
	}
	if private {
		t.Run("a store group-writable by the user's private group", func(t *testing.T) {
			if r := e.run("--store", grouped, "images"); r.code != 0 {
				t.Errorf("devbox --store %s images: exit %d, stderr %q; want it accepted", grouped, r.code, r.stderr)
			}
		})
	}
	t.Run("a new store under /tmp is private", func(t *testing.T) {
		root := filepath.Join(mine, "a", "b", "store")
		e.ok("--store", root, "images")
		for _, p := range []string{filepath.Join(mine, "a"), filepath.Join(mine, "a", "b"), root} {
			fi, err := os.Stat(p)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v, mode %v; want 0700", p, err, fi.Mode().Perm())
			}
		}
	})
}

// TestEscapeStoreSymlinks: links planted in the store (a layer entry, a
// file in a box's directory, layers/ itself) lead prune and rm nowhere
// outside it: the canary stays.
func TestEscapeStoreSymlinks(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "busybox")
	outside := filepath.Join(e.home, "precious")
	os.MkdirAll(filepath.Join(outside, "sub"), 0o755)
	c := plantCanary(t, outside)
	plantCanary(t, filepath.Join(outside, "sub"))
	before := treeSums(t, outside)
	intact := func(t *testing.T) {
		t.Helper()
		c.check(t)
		after := treeSums(t, outside)
		if len(after) != len(before) {
			t.Fatalf("removal followed a link out of the store: %d entries before, %d after", len(before), len(after))
		}
		for p, s := range before {
			if after[p] != s {
				t.Errorf("%s changed or vanished", p)
			}
		}
	}

	t.Run("a layer entry", func(t *testing.T) {
		link := filepath.Join(e.root, "layers", strings.Repeat("ab", 32))
		if err := os.Symlink(outside, link); err != nil {
			t.Fatal(err)
		}
		e.ok("image", "prune")
		if _, err := os.Lstat(link); err == nil {
			t.Errorf("the planted link %s is still there", link)
		}
		intact(t)
	})
	t.Run("links inside a box directory", func(t *testing.T) {
		e.ok("create", "victim", "--image", "busybox")
		ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
		if len(ents) != 1 {
			t.Fatalf("containers/: %d entries", len(ents))
		}
		dir := filepath.Join(e.root, "containers", ents[0].Name())
		os.Symlink(outside, filepath.Join(dir, "to-dir"))
		os.Symlink(c.path, filepath.Join(dir, "to-file"))
		e.ok("rm", "-f", "victim")
		if _, err := os.Lstat(dir); err == nil {
			t.Errorf("%s is still there", dir)
		}
		intact(t)
	})
	t.Run("layers/ itself", func(t *testing.T) {
		layers := filepath.Join(e.root, "layers")
		moved := layers + ".real"
		if err := os.Rename(layers, moved); err != nil {
			t.Fatal(err)
		}
		defer func() { os.Remove(layers); os.Rename(moved, layers) }()
		os.Symlink(outside, layers)
		e.run("rmi", "busybox")
		r := e.run("image", "prune")
		if r.code == 0 {
			t.Errorf("image prune through a symlinked layers/: exit 0, want a refusal")
		}
		intact(t)
	})
}

// privateGroupOf reports whether dir's group is named as the user and has
// no other member in /etc/group (a user private group).
func privateGroupOf(t *testing.T, dir string) bool {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	gid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid))
	u, err := user.Current()
	if err != nil {
		return false
	}
	b, _ := os.ReadFile("/etc/group")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 4 && f[2] == gid {
			return f[0] == u.Username && (f[3] == "" || f[3] == u.Username)
		}
	}
	return false
}
