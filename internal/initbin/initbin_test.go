package initbin

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPath(t *testing.T) {
	saved, savedSum := blob, sum
	t.Cleanup(func() { blob, sum = saved, savedSum })

	blob, sum = nil, ""
	if p, err := Path(t.TempDir()); p != "" || err != nil {
		t.Fatalf("without an embedded init: %q, %v; want \"\", nil", p, err)
	}

	blob = []byte("#!/bin/sh\nexit 0\n")
	sum = "0123456789abcdef0123\n"
	dir := filepath.Join(t.TempDir(), "run")
	p, err := Path(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "init-0123456789abcdef", "devbox-init"); p != want {
		t.Fatalf("path %q, want %q", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o500 || fi.Size() != int64(len(blob)) {
		t.Errorf("written with mode %v size %d", fi.Mode(), fi.Size())
	}
	// A second call trusts the complete copy.
	if p2, err := Path(dir); err != nil || p2 != p {
		t.Fatalf("second call: %q, %v", p2, err)
	}
	// A truncated copy (a crash while writing it) is replaced.
	if err := os.Chmod(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, blob[:3], 0o500); err != nil {
		t.Fatal(err)
	}
	if _, err := Path(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(blob) {
		t.Errorf("a truncated copy was kept: %q", b)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only devbox-init", len(ents))
	}
	sum = "short"
	if _, err := Path(t.TempDir()); err == nil {
		t.Error("an embedded init without a digest must fail")
	}
}
