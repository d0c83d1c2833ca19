package prestart

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sample() Recipe {
	return Recipe{
		Prefix: []string{"--store", "/s", "run", "--net", "none"},
		TTY:    "01",
		Exe:    "/run/user/1/devbox/devbox-init-x/devbox-init",
		Args:   []string{"devbox-init", "fd:4", "3", "/s/containers/" + IDToken},
		Env:    []string{"PATH=/bin", "_DEVBOX_STAGE=init", "_DEVBOX_START=5,keep,main"},
		Flags:  0x7c020000, Setpgid: true,
		Kinds:  []string{PipeFromTarget, PipeToTarget, PipeToTarget},
		UIDMap: []string{"/usr/bin/newuidmap", "0", "200000", "1000"},
		GIDMap: []string{"/usr/bin/newgidmap", "0", "200000", "1000"},
	}
}

func TestEncodeDecode(t *testing.T) {
	r := sample()
	got, ok := Decode(r.Encode())
	if !ok || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: ok=%v\n got %+v\nwant %+v", ok, got, r)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := string(sample().Encode())
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"bad magic", strings.Replace(good, magic, "devbox-prestart-0", 1)},
		{"unknown key", good + "color\x00red\x00"},
		{"dangling key", good + "arg\x00"},
		{"relative exe", strings.Replace(good, "exe\x00/run", "exe\x00run", 1)},
		{"bad fd kind", strings.Replace(good, "fd\x00w\x00", "fd\x00x\x00", 1)},
		{"bad flags", strings.Replace(good, "flags\x00", "flags\x00z", 1)},
		{"relative helper", strings.Replace(good, "uidmap\x00/usr/bin/newuidmap", "uidmap\x00newuidmap", 1)},
		{"no gid map", good[:strings.Index(good, "gidmap\x00")]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := Decode([]byte(tc.in)); ok {
				t.Errorf("Decode accepted %q", tc.in)
			}
		})
	}
}

func TestName(t *testing.T) {
	a, b := Name([]string{"run", "x"}), Name([]string{"runx"})
	if a == b || len(a) != 16 || a != Name([]string{"run", "x"}) {
		t.Errorf("Name: %q %q", a, b)
	}
}

func TestSaveRead(t *testing.T) {
	rt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rt, "devbox"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := sample()
	if err := Save(rt, r); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(Dir(rt), Name(r.Prefix))
	got, ok := readRecipe(path)
	if !ok || !reflect.DeepEqual(got, r) {
		t.Fatalf("readRecipe after Save: ok=%v %+v", ok, got)
	}
	// Someone else could have written a group-writable file: not trusted.
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, ok := readRecipe(path); ok {
		t.Error("readRecipe trusted a group-writable recipe")
	}
	os.Chmod(path, 0o600)
	link := filepath.Join(Dir(rt), Name([]string{"other"}))
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, ok := readRecipe(link); ok {
		t.Error("readRecipe followed a symbolic link")
	}
	// Save replaces atomically and leaves no temporary file.
	r.TTY = "11"
	if err := Save(rt, r); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(Dir(rt))
	if len(ents) != 2 {
		t.Errorf("recipe directory holds %d entries, want the recipe and the link", len(ents))
	}
	if got, _ := readRecipe(path); got.TTY != "11" {
		t.Errorf("Save did not replace the recipe: %+v", got)
	}
}

func TestHelpers(t *testing.T) {
	if got := replace("/c/{id}/x{id}", IDToken, "ab"); got != "/c/ab/xab" {
		t.Errorf("replace = %q", got)
	}
	for n, want := range map[int]string{0: "0", 7: "7", 4096: "4096"} {
		if itoa(n) != want {
			t.Errorf("itoa(%d) = %q", n, itoa(n))
		}
	}
	if id := randomID(); len(id) != 32 || id == randomID() {
		t.Errorf("randomID = %q", id)
	}
	if hex64(0xabc) != "0000000000000abc" {
		t.Errorf("hex64 = %q", hex64(0xabc))
	}
}
