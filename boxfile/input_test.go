package boxfile

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBoxFileFifo: a fifo in a box file's place is refused at once, not
// waited on.
func TestBoxFileFifo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "devbox.toml")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(p); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load of a fifo: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load of a fifo blocked")
	}
}

// TestOneLineNoEscapes: a hook's text printed in build's progress and
// errors carries no terminal escapes.
func TestOneLineNoEscapes(t *testing.T) {
	got := oneLine("true #\x1b]0;PWN\x07\x1b[2J")
	if strings.ContainsAny(got, "\x1b\x07") {
		t.Errorf("oneLine kept control characters: %q", got)
	}
}

// TestDeepBoxFile: a box file nested far deeper than any box needs is
// refused before the TOML decoder (quadratic in the depth) sees it; the
// ordinary reference file still parses.
func TestDeepBoxFile(t *testing.T) {
	for _, deep := range []string{
		"[box.a]\nimage = \"busybox\"\nenv = " + strings.Repeat("{a=", 5000) + "1" + strings.Repeat("}", 5000) + "\n",
		"[box.a]\nimage = \"busybox\"\nenv." + strings.Repeat("a.", 3000) + "a = 1\n",
		"[box.a]\nimage = \"busybox\"\npackages = " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n",
	} {
		if _, err := Parse([]byte(deep), "/", "deep.toml"); err == nil || !strings.Contains(err.Error(), "nested more than") {
			t.Errorf("deep box file: %v", err)
		}
	}
	ok := "[box.web]\nimage = \"debian\" # a comment with [ and {\npackages = [\"less\", \"make\"]\non_create = [\"echo '{[' > /etc/motd\", \"x=${HOME}.a.b.c\"]\nenv = { EDITOR = \"vim\" }\nlimits = { memory = \"2g\", cpus = 1.5 }\nexport = { bin = [\"/usr/bin/rg\"] }\n"
	if _, err := Parse([]byte(ok), "/", "ok.toml"); err != nil {
		t.Errorf("ordinary box file: %v", err)
	}
}
