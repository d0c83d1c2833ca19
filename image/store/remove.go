package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// rootDir is the store root opened once: every walk and removal below it
// is relative to this descriptor and follows no symbolic link, so a
// symlink planted anywhere in the store (containers/, layers/<id>, a file
// inside a layer) is removed as a link, never followed.
type rootDir struct {
	fd   int
	path string
}

// openRoot opens the store root. Symbolic links in the root's own path
// are followed (Open checked where it leads); nothing below it is.
func openRoot(root string) (*rootDir, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the store %s: %w", root, err)
	}
	return &rootDir{fd: fd, path: root}, nil
}

func (r *rootDir) close() { _ = unix.Close(r.fd) }

// openDir opens rel, a relative path below the root, as a directory:
// beneath the root and without following a symbolic link at any element.
func (r *rootDir) openDir(rel string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(r.fd, rel, how)
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return fd, err
		}
	}
}

// names lists the entries of the directory rel below the root (nil when it
// is missing).
func (r *rootDir) names(rel string) ([]string, error) {
	fd, err := r.openDir(rel)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s in the store: %w", rel, err)
	}
	return readNames(fd, rel)
}

// readNames lists the directory fd and closes it.
func readNames(fd int, name string) ([]string, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return f.Readdirnames(-1)
}

// unlink removes the file (or symbolic link, or empty directory) name from
// the directory rel below the root.
func (r *rootDir) unlink(rel, name string) error {
	fd, err := r.openDir(rel)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unlinkAt(fd, name)
}

// removeTree removes the entry name of the directory rel below the root,
// and all it holds.
func (r *rootDir) removeTree(rel, name string) error {
	fd, err := r.openDir(rel)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return removeAt(fd, name)
}

func unlinkAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	}
	return err
}

// removeAt removes name in dirfd and, when it is a directory, everything
// below it, each entry relative to its directory's descriptor. A symbolic
// link is unlinked, never followed (O_NOFOLLOW on every open).
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		// Replaced by a link or a file meanwhile: remove that.
		return unix.Unlinkat(dirfd, name, 0)
	case err != nil:
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	var first error
	for {
		batch, rerr := f.Readdirnames(1024)
		for _, n := range batch {
			if err := removeAt(fd, n); err != nil && first == nil {
				first = fmt.Errorf("%s: %w", filepath.Join(name, n), err)
			}
		}
		if rerr != nil || len(batch) == 0 {
			break
		}
	}
	f.Close()
	if first != nil {
		return first
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// RemoveTrees removes paths, each a direct child of the store's layers/,
// tmp/ or containers/ (CheckRemovable), relative to the store root opened
// once, following no symbolic link anywhere: a symlinked containers/ is
// refused, a symlinked entry is removed as a link. It returns the first
// error and goes on with the rest.
func (s *Store) RemoveTrees(paths []string) error {
	r, err := openRoot(s.Root)
	if err != nil {
		return err
	}
	defer r.close()
	var first error
	for _, p := range paths {
		if err := s.CheckRemovable(p); err != nil {
			first = errors.Join(first, err)
			continue
		}
		parent, _ := filepath.Rel(s.Root, filepath.Dir(p))
		err := r.removeTree(parent, filepath.Base(p))
		switch {
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.EXDEV):
			first = errors.Join(first, fmt.Errorf("refusing to remove %q: %s is not a directory of the store (a symbolic link?) (hint: move it away and run devbox prune again)", p, filepath.Dir(p)))
		case errors.Is(err, unix.ENOENT):
		case err != nil:
			first = errors.Join(first, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	return first
}
