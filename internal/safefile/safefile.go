// Package safefile opens the files devbox writes in directories something
// else may also write (a box's directory in the store, which a dev box can
// reach through the home it shares; the store's locks/): by name, but
// never through a symbolic link or into anything but a regular file.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Create creates path anew for writing (flags are added to
// O_WRONLY|O_CREATE|O_EXCL): whatever entry has its name (a previous file,
// a planted link, a fifo) is removed first, so the write never lands in a
// file elsewhere. A directory there is an error.
func Create(path string, flags int, perm os.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.IsDir() {
			return nil, fmt.Errorf("%s is a directory", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	// O_EXCL fails on any entry that appeared meanwhile, a link included.
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|flags, perm)
}

// OpenLock opens (creating it with perm) the lock file path for flock: a
// regular file reached without following a link. A link in its place is
// removed (only the link) and the lock created.
func OpenLock(path string, perm os.FileMode) (*os.File, error) {
	for try := 0; ; try++ {
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, perm)
		if errors.Is(err, unix.ELOOP) && try == 0 {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				if rerr := os.Remove(path); rerr == nil || errors.Is(rerr, fs.ErrNotExist) {
					continue
				}
			}
		}
		if err != nil {
			return nil, err
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("%s is not a regular file", path)
		}
		return f, nil
	}
}

// Append opens the log file path for appending, creating it with perm: a
// regular file reached without following a link. Anything else in its
// place (a planted link, a fifo, a socket) is removed (only that entry)
// and the file created anew; a directory is an error.
func Append(path string, perm os.FileMode) (*os.File, error) {
	for try := 0; ; try++ {
		// O_NONBLOCK: a fifo without a reader fails at once (ENXIO)
		// instead of waiting for one; a regular file ignores it.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, perm)
		if err == nil {
			if fi, serr := f.Stat(); serr == nil && fi.Mode().IsRegular() {
				return f, nil
			}
			f.Close()
			err = fmt.Errorf("%s is not a regular file", path)
		}
		if try > 0 {
			return nil, err
		}
		fi, lerr := os.Lstat(path)
		if lerr != nil || fi.IsDir() {
			return nil, err
		}
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, err
		}
	}
}

// Open opens the regular file path for reading, reached without following
// a link (a fifo is refused at once, never waited on).
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link", path)
	}
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, nil
}

// ReadFile reads the regular file path, reached without following a link,
// of at most max bytes: a record something else may have written.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// Flock is flock(2) on fd with how (unix.LOCK_EX, LOCK_SH, |LOCK_NB),
// tried again when a signal interrupts it: the one lock loop of devbox's
// lock files.
func Flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// WriteFile replaces path with b (mode perm, exactly) by a rename from a
// temporary file of a name of its own beside it, created exclusively: a
// reader sees the old file or the new one, whole, also while other writers
// write the same path; a link planted at the name is replaced, not
// followed, and one planted at a temporary's name cannot be opened.
func WriteFile(path string, b []byte, perm os.FileMode) error {
	// CreateTemp opens with O_CREATE|O_EXCL: nothing that exists at the
	// name, a link included, is opened.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
