package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type tarEntry struct {
	name string
	typ  byte
	body string
}

func writeTar(t *testing.T, entries []tarEntry) *os.File {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeSymlink {
			h.Linkname, h.Size = "/etc/passwd", 0
		}
		if e.typ == tar.TypeDir {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestReadArchiveStrict(t *testing.T) {
	const blob = "blobs/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	layout := tarEntry{"oci-layout", tar.TypeReg, `{"imageLayoutVersion":"1.0.0"}`}
	index := tarEntry{"index.json", tar.TypeReg, `{"schemaVersion":2,"manifests":[]}`}
	for _, c := range []struct {
		name    string
		entries []tarEntry
		err     string // "" : accepted
	}{
		{"minimal", []tarEntry{layout, index, {"blobs/", tar.TypeDir, ""}, {"blobs/sha256/", tar.TypeDir, ""}, {blob, tar.TypeReg, "data"}}, ""},
		{"dot-slash names and docker's files", []tarEntry{{"./oci-layout", tar.TypeReg, layout.body}, index, {"manifest.json", tar.TypeReg, "[]"}, {"./" + blob, tar.TypeReg, "x"}}, ""},
		{"no layout", []tarEntry{index}, "not an OCI archive"},
		{"no index", []tarEntry{layout}, "not an OCI archive"},
		{"bad layout", []tarEntry{{"oci-layout", tar.TypeReg, "{}"}, index}, "oci-layout"},
		{"escape", []tarEntry{layout, index, {"../x", tar.TypeReg, "x"}}, "unexpected entry"},
		{"absolute", []tarEntry{layout, index, {"/etc/passwd", tar.TypeReg, "x"}}, "unexpected entry"},
		{"symlink blob", []tarEntry{layout, index, {blob, tar.TypeSymlink, ""}}, "regular files only"},
		{"hard link", []tarEntry{layout, index, {blob, tar.TypeLink, ""}}, "regular files only"},
		{"duplicate", []tarEntry{layout, index, {blob, tar.TypeReg, "a"}, {blob, tar.TypeReg, "b"}}, "twice"},
		{"other directory", []tarEntry{layout, index, {"blobs/sha512/", tar.TypeDir, ""}}, "unexpected directory"},
		{"short digest", []tarEntry{layout, index, {"blobs/sha256/abc", tar.TypeReg, "x"}}, "unexpected entry"},
		{"huge index", []tarEntry{layout, {"index.json", tar.TypeReg, strings.Repeat(" ", maxArchiveIndex+1)}}, "too large"},
	} {
		a, err := readArchive(writeTar(t, c.entries))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		case c.err == "" && len(a.blobs) != 1:
			t.Errorf("%s: blobs %v", c.name, a.blobs)
		}
	}
}

// The blob sections point at the data in the file.
func TestReadArchiveSections(t *testing.T) {
	const hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f := writeTar(t, []tarEntry{{"oci-layout", tar.TypeReg, `{"imageLayoutVersion":"1.0.0"}`},
		{"blobs/sha256/" + hex, tar.TypeReg, "the blob's bytes"}, {"index.json", tar.TypeReg, "{}"}})
	a, err := readArchive(f)
	if err != nil {
		t.Fatal(err)
	}
	s := a.blobs[hex]
	b := make([]byte, s.size)
	if _, err := f.ReadAt(b, s.off); err != nil || string(b) != "the blob's bytes" {
		t.Errorf("section %+v: %q, %v", s, b, err)
	}
}
