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
