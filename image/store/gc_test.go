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
