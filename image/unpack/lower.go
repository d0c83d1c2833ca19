package unpack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// errHidden is returned when a hard link target is not visible through this
// layer and the lowers.
var errHidden = errors.New("target not found in this layer nor in the lower layers")

// lowerFD returns the O_PATH fd of lower layer i, opening it on first use.
func (u *unpacker) lowerFD(i int) (int, error) {
	if u.lowers[i] >= 0 {
		return u.lowers[i], nil
	}
	fd, err := unix.Open(u.opts.Lowers[i], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: u.opts.Lowers[i], Err: err}
	}
	u.lowers[i] = fd
	return fd, nil
}

// found is where lookup found a path: in lower layer 'layer' (-1: this
// layer), as entry base of the open directory parent.
type found struct {
	layer  int
	parent int // to close if owned
	owned  bool
	// dirSrc[i] is the top-most layer holding the i-th parent directory of
	// the path (-1: this layer).
	dirSrc []int
}

func (f *found) close() {
	if f.owned {
		unix.Close(f.parent)
	}
}

// lookup resolves the path comps as overlayfs would through this layer and
// the lowers, top-most first: a whiteout or a non-directory on the way hides
// everything below, an opaque directory hides the layers beneath it. A
// symbolic link on the way is refused.
func (u *unpacker) lookup(comps []string) (*found, error) {
	last := len(comps) - 1
	dirSrc := make([]int, last)
	for i := range dirSrc {
		dirSrc[i] = -2
	}
	for li := -1; li < len(u.opts.Lowers); li++ {
		root := u.root
		if li >= 0 {
			var err error
			if root, err = u.lowerFD(li); err != nil {
				return nil, err
			}
		}
		fd, owned := root, false
		closeFD := func() {
			if owned {
				unix.Close(fd)
			}
		}
		hidesBelow := false
		for i, c := range comps {
			var st unix.Stat_t
			err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW)
			if err == unix.ENOENT {
				break
			}
			if err != nil {
				closeFD()
				return nil, &os.PathError{Op: "fstatat", Path: layerPath(u, li, comps[:i+1]), Err: err}
			}
			if isWhiteout(&st) {
				closeFD()
				return nil, errHidden
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if i == last {
				if isDir {
					closeFD()
					return nil, errors.New("target is a directory")
				}
				return &found{layer: li, parent: fd, owned: owned, dirSrc: dirSrc}, nil
			}
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				closeFD()
				return nil, fmt.Errorf("%w: %q is a symbolic link", ErrUnsafePath, strings.Join(comps[:i+1], "/"))
			}
			if !isDir {
				closeFD()
				return nil, errHidden
			}
			nfd, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				closeFD()
				return nil, &os.PathError{Op: "openat", Path: layerPath(u, li, comps[:i+1]), Err: err}
			}
			closeFD()
			fd, owned = nfd, true
			if dirSrc[i] == -2 {
				dirSrc[i] = li
			}
			if isOpaque(fd) {
				hidesBelow = true
			}
		}
		closeFD()
		if hidesBelow {
			return nil, errHidden
		}
	}
	return nil, errHidden
}

func layerPath(u *unpacker, li int, comps []string) string {
	p := strings.Join(comps, "/")
	if li >= 0 {
		return u.opts.Lowers[li] + "/" + p
	}
	return p
}

// openLowerDir opens directory comps of lower layer li without following
// symlinks.
func (u *unpacker) openLowerDir(li int, comps []string) (int, error) {
	root, err := u.lowerFD(li)
	if err != nil {
		return -1, err
	}
	fd := root
	for i, c := range comps {
		nfd, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if fd != root {
			unix.Close(fd)
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat", Path: layerPath(u, li, comps[:i+1]), Err: err}
		}
		fd = nfd
	}
	if fd == root {
		return unix.Openat(root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	return fd, nil
}

// copyUp copies the hard link target (a cleaned path missing in this layer)
// from the top-most lower layer where it is visible into this layer, with
// the metadata of the missing parent directories.
func (u *unpacker) copyUp(target string) error {
	comps := strings.Split(target, "/")
	f, err := u.lookup(comps)
	if err != nil {
		return err
	}
	defer f.close()
	if f.layer < 0 {
		return nil // appeared in this layer
	}
	parent, base := splitPath(target)
	pfd, err := u.dirFD(parent, func(pfd int, rel, base string) error {
		src := f.dirSrc[strings.Count(rel, "/")]
		if src < 0 {
			return u.mkImplicit(pfd, rel, base)
		}
		return u.copyUpDir(pfd, rel, base, src)
	})
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(f.parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fstatat", Path: layerPath(u, f.layer, comps), Err: err}
	}
	ts := [2]unix.Timespec{st.Atim, st.Mtim}
	uid, gid, mode := int(st.Uid), int(st.Gid), st.Mode&0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		// O_NONBLOCK: should the file have been swapped for a FIFO since
		// fstatat, the open must not block; fstat tells.
		src, err := unix.Openat(f.parent, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "openat", Path: layerPath(u, f.layer, comps), Err: err}
		}
		defer unix.Close(src)
		if err := unix.Fstat(src, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("copying up %s: file changed while reading", target)
		}
		dst, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "create", Path: target, Err: err}
		}
		defer unix.Close(dst)
		if _, err := u.copyData(dst, fdReader(src), nil); err != nil {
			return fmt.Errorf("copying up %s: %w", target, err)
		}
		if err := u.chownErr(unix.Fchown(dst, uid, gid), target, uid, gid); err != nil {
			return err
		}
		if err := unix.Fchmod(dst, mode); err != nil {
			return &os.PathError{Op: "fchmod", Path: target, Err: err}
		}
		if err := u.copyXattrs(src, dst, target); err != nil {
			return err
		}
		if err := futimens(dst, &ts); err != nil {
			return &os.PathError{Op: "futimens", Path: target, Err: err}
		}
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(f.parent, base, buf)
		if err != nil {
			return &os.PathError{Op: "readlinkat", Path: layerPath(u, f.layer, comps), Err: err}
		}
		if err := unix.Symlinkat(string(buf[:n]), pfd, base); err != nil {
			return &os.PathError{Op: "symlinkat", Path: target, Err: err}
		}
		if err := u.chownErr(unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW), target, uid, gid); err != nil {
			return err
		}
		if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "utimensat", Path: target, Err: err}
		}
	case unix.S_IFIFO:
		if err := unix.Mkfifoat(pfd, base, 0o600); err != nil {
			return &os.PathError{Op: "mkfifoat", Path: target, Err: err}
		}
		if err := u.nodeMeta(pfd, base, target, uid, gid, mode, &ts); err != nil {
			return err
		}
	default:
		return fmt.Errorf("cannot copy up %s: unsupported file type %#o", layerPath(u, f.layer, comps), st.Mode&unix.S_IFMT)
	}
	return nil
}

// copyUpDir creates directory base (path rel) in pfd with the metadata of the
// same directory in lower layer li; mode and times are deferred.
func (u *unpacker) copyUpDir(pfd int, rel, base string, li int) error {
	src, err := u.openLowerDir(li, strings.Split(rel, "/"))
	if err != nil {
		return err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: layerPath(u, li, []string{rel}), Err: err}
	}
	if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
		return &os.PathError{Op: "mkdirat", Path: rel, Err: err}
	}
	if err := u.chownErr(unix.Fchownat(pfd, base, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW), rel, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	dst, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "openat", Path: rel, Err: err}
	}
	err = u.copyXattrs(src, dst, rel)
	unix.Close(dst)
	if err != nil {
		return err
	}
	u.dirs[rel] = dirMeta{mode: st.Mode & 0o7777, atime: st.Atim, mtime: st.Mtim}
	return nil
}

// fdReader reads a raw file descriptor.
type fdReader int

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}
