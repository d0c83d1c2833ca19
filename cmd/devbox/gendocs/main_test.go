package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerate(t *testing.T) {
	date := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	if err := generate(dir, "v9.9.9", false, date); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"devbox.1", "devbox-pull.1", "devbox-doctor.1", "devbox-image-prune.1", "devbox-exit-codes.1", "devbox-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("%s: %v", page, err)
			continue
		}
		if !bytes.HasPrefix(b, []byte(".nh\n.TH \"DEVBOX\" \"1\" \"Jan 2026\" \"devbox v9.9.9\" \"devbox manual\"")) {
			t.Errorf("%s: unexpected header %q", page, b[:min(len(b), 80)])
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "devbox-exit-codes.1")); !strings.Contains(string(b), "125") {
		t.Error("the exit-codes page does not list the codes")
	}
	if _, err := os.Stat(filepath.Join(dir, "devbox-help.1")); err == nil {
		t.Error("help has a page of its own")
	}

	// Compressed pages are reproducible and decompress to the same text.
	gz1, gz2 := t.TempDir(), t.TempDir()
	for _, d := range []string{gz1, gz2} {
		if err := generate(d, "v9.9.9", true, date); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(filepath.Join(gz1, "devbox-doctor.1.gz"))
	b, _ := os.ReadFile(filepath.Join(gz2, "devbox-doctor.1.gz"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("gzipped pages differ between two runs")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(zr)
	plain, _ := os.ReadFile(filepath.Join(dir, "devbox-doctor.1"))
	if !bytes.Equal(text, plain) {
		t.Error("the gzipped page is not the plain page")
	}
}
