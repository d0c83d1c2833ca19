package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBuildRecords: devbox build's own record of what it built is the only
// thing a cache hit may trust, so a planted one (a link, a fifo, a huge
// file, not a digest) counts as none, and writing one never goes through a
// link planted in the store.
func TestBuildRecords(t *testing.T) {
	st := openTestStore(t)
	key, id := strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	if _, ok := st.BuiltImage(key); ok {
		t.Fatal("a record before any build")
	}
	if err := st.RecordBuild(key, id); err != nil {
		t.Fatal(err)
	}
	if got, ok := st.BuiltImage(key); !ok || got != id {
		t.Fatalf("BuiltImage = %q, %v; want %q", got, ok, id)
	}
	id2 := "sha256:" + strings.Repeat("c", 64)
	if err := st.RecordBuild(key, id2); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.BuiltImage(key); got != id2 {
		t.Errorf("a second build of the key: %q, want %q", got, id2)
	}
	for _, bad := range [][2]string{{"../x", id}, {strings.Repeat("A", 64), id}, {key, "sha256:../../x"}, {key, "md5:" + strings.Repeat("b", 64)}} {
		if err := st.RecordBuild(bad[0], bad[1]); err == nil {
			t.Errorf("RecordBuild(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if _, ok := st.BuiltImage("../oci/index.json"); ok {
		t.Error("a key with .. read a file")
	}

	// Hostile records.
	p := filepath.Join(st.Root, buildsDir, key)
	outside := filepath.Join(t.TempDir(), "digest")
	if err := os.WriteFile(outside, []byte(id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		plant func() error
	}{
		{"link to a valid record", func() error { return os.Symlink(outside, p) }},
		{"link to /dev/zero", func() error { return os.Symlink("/dev/zero", p) }},
		{"fifo", func() error { return unix.Mkfifo(p, 0o600) }},
		{"too long", func() error { return os.WriteFile(p, []byte(id+"\n"+strings.Repeat("x", 200)), 0o600) }},
		{"two digests", func() error { return os.WriteFile(p, []byte(id+"\n"+id+"\n"), 0o600) }},
		{"no newline", func() error { return os.WriteFile(p, []byte(id), 0o600) }},
		{"escape", func() error { return os.WriteFile(p, []byte("\x1b]0;x\x07\n"), 0o600) }},
	} {
		os.Remove(p)
		if err := c.plant(); err != nil {
			t.Fatal(err)
		}
		if got, ok := st.BuiltImage(key); ok {
			t.Errorf("%s: BuiltImage = %q, want no record", c.name, got)
		}
	}
	// builds/ itself a link: nothing is read or written through it.
	os.RemoveAll(filepath.Join(st.Root, buildsDir))
	elsewhere := t.TempDir()
	os.WriteFile(filepath.Join(elsewhere, key), []byte(id+"\n"), 0o600)
	if err := os.Symlink(elsewhere, filepath.Join(st.Root, buildsDir)); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.BuiltImage(key); ok {
		t.Error("read a record through a linked builds/")
	}
	if err := st.RecordBuild(strings.Repeat("d", 64), id); err == nil {
		t.Error("wrote a record through a linked builds/")
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 1 {
		t.Errorf("files written through the link: %v", ents)
	}
}
