package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBase: XDG_RUNTIME_DIR is used when it is the caller's and nobody
// else may write it; one others may write (where they could make devbox's
// directory first and stand in for a box's agent) is an error with a hint.
func TestBase(t *testing.T) {
	for _, c := range []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"private", 0o700, true},
		{"readable", 0o755, true},
		{"group-writable", 0o770, false},
		{"world-writable", 0o777, false},
		{"sticky", 0o777 | os.ModeSticky, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.Chmod(d, c.mode); err != nil {
				t.Fatal(err)
			}
			t.Setenv("XDG_RUNTIME_DIR", d)
			got, err := Base()
			if c.ok && (err != nil || got != filepath.Join(d, "devbox")) {
				t.Errorf("Base() = %q, %v; want %s", got, err, filepath.Join(d, "devbox"))
			}
			if !c.ok && (err == nil || !strings.Contains(err.Error(), "hint:")) {
				t.Errorf("Base() = %q, %v; want an error with a hint", got, err)
			}
		})
	}
}

// TestBaseDevboxDir: devbox's own directory in XDG_RUNTIME_DIR is used
// when missing or a directory of the caller's that others may not write;
// one others may write (made by another user while XDG_RUNTIME_DIR was
// open), a link or a file is an error with a hint.
func TestBaseDevboxDir(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(dir string) error
		ok   bool
	}{
		{"missing", func(string) error { return nil }, true},
		{"private", func(d string) error { return os.Mkdir(d, 0o700) }, true},
		{"readable", func(d string) error { return os.Mkdir(d, 0o755) }, true},
		{"group-writable", func(d string) error { return mkdirMode(d, 0o770) }, false},
		{"world-writable", func(d string) error { return mkdirMode(d, 0o777) }, false},
		{"link", func(d string) error {
			o := filepath.Join(filepath.Dir(d), "other")
			if err := os.Mkdir(o, 0o700); err != nil {
				return err
			}
			return os.Symlink(o, d)
		}, false},
		{"file", func(d string) error { return os.WriteFile(d, nil, 0o600) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.Chmod(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := c.make(filepath.Join(d, "devbox")); err != nil {
				t.Fatal(err)
			}
			t.Setenv("XDG_RUNTIME_DIR", d)
			got, err := Base()
			if c.ok && (err != nil || got != filepath.Join(d, "devbox")) {
				t.Errorf("Base() = %q, %v; want %s", got, err, filepath.Join(d, "devbox"))
			}
			if !c.ok && (err == nil || !strings.Contains(err.Error(), "hint: mv ")) {
				t.Errorf("Base() = %q, %v; want an error with a hint", got, err)
			}
		})
	}
	if os.Getuid() == 0 {
		t.Run("another user's", func(t *testing.T) {
			d := t.TempDir()
			dir := filepath.Join(d, "devbox")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			t.Setenv("XDG_RUNTIME_DIR", d)
			if got, err := Base(); err == nil {
				t.Errorf("Base() = %q with devbox/ another user's", got)
			}
		})
	}
}

func mkdirMode(d string, mode os.FileMode) error {
	if err := os.Mkdir(d, mode); err != nil {
		return err
	}
	return os.Chmod(d, mode)
}
