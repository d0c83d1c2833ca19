package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckRemovable(t *testing.T) {
	root := t.TempDir()
	s := &Store{Root: root}
	os.MkdirAll(s.LayersDir(), 0o700)
	os.MkdirAll(s.TmpDir(), 0o700)
	outside := t.TempDir()
	// containers/ is a symlink to a directory outside the store.
	os.Symlink(outside, s.ContainersDir())
	for _, c := range []struct {
		path, want string
	}{
		{filepath.Join(s.LayersDir(), "abc"), ""},
		{filepath.Join(s.TmpDir(), "blob-x-1"), ""},
		{filepath.Join(s.ContainersDir(), "0123456789ab"), "not a directory of the store"},
		{filepath.Join(s.LayersDir(), ".."), "not a store layer"},
		{s.LayersDir() + "/x/../y", "not a store layer"},
		{filepath.Join(root, "oci"), "not a store layer"},
		{"/home/u", "not a store layer"},
	} {
		err := s.CheckRemovable(c.path)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckRemovable(%q) = %v, want %q", c.path, err, c.want)
		}
	}
}

// TestRemoveTreesNoFollow: links planted in the store are removed as
// links; a symlinked containers/ is refused; the canary outside stays.
func TestRemoveTreesNoFollow(t *testing.T) {
	root := t.TempDir()
	s := &Store{Root: root}
	canary := t.TempDir()
	if err := os.WriteFile(filepath.Join(canary, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{s.LayersDir(), s.TmpDir(), filepath.Join(s.LayersDir(), "a", "deep", "er")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(canary, filepath.Join(s.LayersDir(), "a", "deep", "link"))
	os.Symlink(filepath.Join(canary, "keep"), filepath.Join(s.LayersDir(), "a", "file-link"))
	os.WriteFile(filepath.Join(s.LayersDir(), "a", "deep", "er", "f"), nil, 0o600)
	os.Symlink(canary, filepath.Join(s.TmpDir(), "blob-x-1"))
	os.Symlink(canary, s.ContainersDir())
	for _, c := range []struct {
		path    string
		wantErr bool
	}{
		{filepath.Join(s.LayersDir(), "a"), false},
		{filepath.Join(s.TmpDir(), "blob-x-1"), false},
		{filepath.Join(s.ContainersDir(), "keep"), true},
		{filepath.Join(s.LayersDir(), "missing"), false},
	} {
		err := s.RemoveTrees([]string{c.path})
		if (err != nil) != c.wantErr {
			t.Errorf("RemoveTrees(%s) = %v, want error %v", c.path, err, c.wantErr)
		}
		if _, err := os.Lstat(c.path); !c.wantErr && err == nil {
			t.Errorf("%s still there", c.path)
		}
	}
	if b, err := os.ReadFile(filepath.Join(canary, "keep")); err != nil || string(b) != "x" {
		t.Fatalf("canary: %q, %v", b, err)
	}
	if _, err := os.Lstat(s.ContainersDir()); err != nil {
		t.Fatalf("the containers/ link itself: %v", err)
	}
}
