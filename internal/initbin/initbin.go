// Package initbin carries the box init (cmd/devbox-init) inside devbox, so
// that devbox stays one file while every box starts a small program instead
// of the whole CLI: the init starts in a third of the time (docs/benchmarks.md).
//
// `make build` (and the release build) compile cmd/devbox-init for the target
// architecture into this directory with build.sh and build devbox with the
// devbox_embedinit tag, which embeds it. A plain `go build` embeds nothing
// and devbox runs its own binary as the init, as tests' binaries do.
//
// At run time Path writes the embedded program once into devbox's private
// runtime directory, as init-DIGEST/devbox-init (so that ps shows
// devbox-init), and returns that path.
package initbin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// blob and sum are set by the embedding file of the build (embed_*.go).
var (
	blob []byte
	sum  string
)

// Embedded reports whether this build carries the init.
func Embedded() bool { return len(blob) > 0 }

// Path returns the path of the embedded init under dir (devbox's private
// runtime directory, created when missing), writing it there first if it is
// not there yet. It returns "" and no error when the build embeds nothing.
func Path(dir string) (string, error) {
	if !Embedded() {
		return "", nil
	}
	s := strings.TrimSpace(sum)
	if len(s) < 16 {
		return "", errors.New("embedded init: no digest")
	}
	dir = filepath.Join(dir, "init-"+s[:16])
	path := filepath.Join(dir, "devbox-init")
	if ok(path) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("writing the box init: %w", err)
	}
	f, err := os.CreateTemp(dir, ".devbox-init-*")
	if err != nil {
		return "", fmt.Errorf("writing the box init: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(blob)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o500)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing the box init: %w", err)
	}
	return path, nil
}

// ok reports whether path is a complete copy written by Path: a regular
// file of ours, mode 0500, of the embedded size. (Its name carries the
// digest; the directory is private, so nobody else can have put it there.)
func ok(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o500 || fi.Size() != int64(len(blob)) {
		return false
	}
	st, isStat := fi.Sys().(*syscall.Stat_t)
	return isStat && int(st.Uid) == os.Getuid()
}
