package cmdutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// boxName reads records a box may have written: links, fifos and escapes
// give no name, and never a read that does not end.
func TestBoxNameHostileRecords(t *testing.T) {
	cases := []struct {
		name  string
		plant func(dir string)
		want  string
	}{
		{"box.json", func(d string) { os.WriteFile(filepath.Join(d, "box.json"), []byte(`{"name":"dev"}`), 0o600) }, "dev"},
		{"spec.json of a run", func(d string) { os.WriteFile(filepath.Join(d, "spec.json"), []byte(`{"name":"r1"}`), 0o600) }, "r1"},
		{"a link to /dev/zero", func(d string) { os.Symlink("/dev/zero", filepath.Join(d, "box.json")) }, ""},
		{"a link to a record", func(d string) {
			os.WriteFile(filepath.Join(d, "real"), []byte(`{"name":"dev"}`), 0o600)
			os.Symlink(filepath.Join(d, "real"), filepath.Join(d, "box.json"))
		}, ""},
		{"an escape in the name", func(d string) {
			os.WriteFile(filepath.Join(d, "box.json"), []byte(`{"name":"a\u001b]0;x\u0007"}`), 0o600)
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.plant(dir)
			got := make(chan string, 1)
			go func() { got <- boxName(dir) }()
			select {
			case n := <-got:
				if n != c.want {
					t.Errorf("boxName = %q, want %q", n, c.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("boxName did not return")
			}
		})
	}
}
