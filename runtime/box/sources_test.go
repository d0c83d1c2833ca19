package box

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSources(t *testing.T) {
	cases := []struct {
		name   string
		attack func(t *testing.T, src, elsewhere string)
		want   string // "" for no error
	}{
		{"unchanged", func(*testing.T, string, string) {}, ""},
		{"replaced by a symlink", func(t *testing.T, src, elsewhere string) {
			must(t, os.Rename(src, src+".old"))
			must(t, os.Symlink(elsewhere, src))
		}, "symbolic link"},
		{"parent replaced by a symlink", func(t *testing.T, src, elsewhere string) {
			parent := filepath.Dir(src)
			must(t, os.Rename(parent, parent+".old"))
			must(t, os.MkdirAll(filepath.Join(elsewhere, "x"), 0o755))
			must(t, os.Symlink(elsewhere, parent))
		}, "symbolic link"},
		{"replaced by another directory", func(t *testing.T, src, _ string) {
			must(t, os.Rename(src, src+".old"))
			must(t, os.Mkdir(src, 0o755))
		}, "another directory"},
		{"gone", func(t *testing.T, src, _ string) { must(t, os.Rename(src, src+".old")) }, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			src := filepath.Join(base, "p", "x")
			elsewhere := filepath.Join(base, "home")
			must(t, os.MkdirAll(src, 0o755))
			must(t, os.MkdirAll(elsewhere, 0o755))
			// Named through a symlink at create: recorded resolved.
			must(t, os.Symlink(src, filepath.Join(base, "link")))
			res, dev, ino, err := Identify(filepath.Join(base, "link"))
			if err != nil || res != src || ino == 0 {
				t.Fatalf("Identify = %q %d %d %v", res, dev, ino, err)
			}
			r := &Record{Name: "b", Volumes: []Volume{{Source: res, Target: "/data", Dev: dev, Ino: ino}}}
			c.attack(t, src, elsewhere)
			err = CheckSources(r)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "/data")) {
				t.Errorf("CheckSources = %v, want %q naming the volume", err, c.want)
			}
			r.Volumes[0].Ino = 0 // a record from before: not checked
			if err := CheckSources(r); err != nil {
				t.Errorf("unidentified source checked: %v", err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
