package box

import (
	"os"
	"path/filepath"
	"strings"
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

func TestFindCgroupBoxes(t *testing.T) {
	all := []CgroupBox{{ID: "aaaa1111", Name: "web"}, {ID: "bbbb2222", Name: "db"}, {ID: "cccc3333", Name: "web2"}, {ID: "cccc4444"}}
	got, err := FindCgroupBoxes(all, []string{"db", "aaaa", "cccc4"})
	if err != nil || len(got) != 3 || got[0].ID != "bbbb2222" || got[1].ID != "aaaa1111" || got[2].ID != "cccc4444" {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := FindCgroupBoxes(all, []string{"cccc"}); err == nil || !strings.Contains(err.Error(), "names 2 running boxes") {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := FindCgroupBoxes(all, []string{"nope"}); err == nil || !strings.Contains(err.Error(), `no running box "nope"`) {
		t.Errorf("missing: %v", err)
	}
	if _, err := FindCgroupBoxes(all, []string{"aaa"}); err == nil {
		t.Error("a 3-character prefix matched")
	}
	if l := (CgroupBox{ID: "0123456789abcdef"}).Label(); l != "0123456789ab" {
		t.Errorf("Label() = %q", l)
	}
}
