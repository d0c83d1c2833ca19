package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/test/testutil"
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

// TestGCBuildRecords: a build record outlives its image unless the
// collector (behind rmi, image prune, prune) drops it: records whose image
// is no longer stored go, and so does anything planted in builds/ that is
// not a record (a link, a fifo, a huge file, another name), removed as
// itself, never followed or read whole; a live writer's temporary stays,
// a dead one's goes. The record of a stored image stays until its image
// is removed.
func TestGCBuildRecords(t *testing.T) {
	fx := newGCFixture(t)
	s := fx.s
	dir := filepath.Join(s.Root, buildsDir)
	stored := "sha256:" + fx.man.Hex
	key := func(c string) string { return strings.Repeat(c, 64) }
	if err := s.RecordBuild(key("1"), stored); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordBuild(key("2"), "sha256:"+key("f")); err != nil { // an image since removed
		t.Fatal(err)
	}
	outside := t.TempDir()
	canary := filepath.Join(outside, "record")
	writeFile(t, canary, stored+"\n")
	os.Symlink(canary, filepath.Join(dir, key("3")))
	os.Symlink(outside, filepath.Join(dir, key("4")))
	unix.Mkfifo(filepath.Join(dir, key("5")), 0o600)
	if err := testutil.HugeFile(filepath.Join(dir, key("6")), []byte(stored+"\n")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "not-a-key"), stored+"\n")
	writeFile(t, filepath.Join(dir, "."+key("7")+"-live"), "")
	dead := filepath.Join(dir, "."+key("8")+"-dead")
	writeFile(t, dead, "")
	old := time.Now().Add(-2 * staleTmpBuild)
	os.Chtimes(dead, old, old)

	gone := []string{key("2"), key("3"), key("4"), key("5"), key("6"), "not-a-key", filepath.Base(dead)}
	rep, err := s.GC(GCOptions{DryRun: true, Remove: s.RemoveTrees})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(KindBuild) != len(gone) {
		t.Errorf("dry run: %d build items, want %d: %+v", rep.Count(KindBuild), len(gone), rep.Items)
	}
	if _, err := os.Lstat(filepath.Join(dir, key("2"))); err != nil {
		t.Error("a dry run removed a record")
	}
	if _, err := s.GC(GCOptions{Remove: s.RemoveTrees}); err != nil {
		t.Fatal(err)
	}
	for _, n := range gone {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s: still in builds/", n)
		}
	}
	for _, n := range []string{key("1"), "." + key("7") + "-live"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if b, err := os.ReadFile(canary); err != nil || string(b) != stored+"\n" {
		t.Errorf("the link's target: %q, %v", b, err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the linked directory: %v", err)
	}
	if id, ok := s.BuiltImage(key("1")); !ok || id != stored {
		t.Errorf("the stored image's record: %q, %v", id, ok)
	}
	// The image removed (rmi: untag, then collect): its record goes.
	if err := s.Untag("example.com/x:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(GCOptions{Remove: s.RemoveTrees}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, key("1"))); err == nil {
		t.Error("the record of a removed image stays")
	}
}
