package export

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Rootfs reads a box's root filesystem from the host, as overlayfs would
// show it, without mounting it: the box's upper directory over its image
// layers. Whiteouts (0:0 character devices) hide lower entries, an opaque
// directory (user.overlay.opaque=y) hides the lower directories', and
// symbolic links are resolved against the box's root, never the host's.
// Every directory is opened with openat2(RESOLVE_BENEATH|
// RESOLVE_NO_SYMLINKS) relative to its layer, so no host path outside the
// layers is ever reached.
type Rootfs struct {
	layers []int // directory fds, top-most (upper) first
}

// maxLinks bounds symbolic link resolution, as the kernel's ELOOP does.
const maxLinks = 40

// OpenRootfs opens the layers (top-most first; a missing upper directory
// of a box never started is skipped).
func OpenRootfs(layers []string) (*Rootfs, error) {
	r := &Rootfs{}
	for i, l := range layers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if i == 0 && errors.Is(err, unix.ENOENT) {
				continue
			}
			r.Close()
			return nil, fmt.Errorf("opening the box's layer %s: %w", l, err)
		}
		r.layers = append(r.layers, fd)
	}
	if len(r.layers) == 0 {
		return nil, errors.New("the box has no layers")
	}
	return r, nil
}

// Close releases the layers.
func (r *Rootfs) Close() {
	for _, fd := range r.layers {
		unix.Close(fd)
	}
	r.layers = nil
}

func beneath(dir int, name string, flags uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(dir, name, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func opaque(fd int) bool {
	// O_PATH descriptors cannot read xattrs; go through /proc.
	var b [8]byte
	n, err := unix.Getxattr(fmt.Sprintf("/proc/self/fd/%d", fd), "user.overlay.opaque", b[:])
	if err != nil {
		n, err = unix.Getxattr(fmt.Sprintf("/proc/self/fd/%d", fd), "trusted.overlay.opaque", b[:])
	}
	return err == nil && n == 1 && b[0] == 'y'
}

// stack is one directory of the merged tree: its directory in each layer
// that contributes to it, top-most first.
type stack []int

func closeStack(s stack) {
	for _, fd := range s {
		unix.Close(fd)
	}
}

// entry finds name in directory s: the stat of the top-most layer's entry
// and, for a directory, the merged stack below it.
func entry(s stack, name string) (st unix.Stat_t, top int, err error) {
	for _, d := range s {
		if e := unix.Fstatat(d, name, &st, unix.AT_SYMLINK_NOFOLLOW); e != nil {
			if errors.Is(e, unix.ENOENT) {
				continue
			}
			return st, -1, e
		}
		if isWhiteout(&st) {
			return st, -1, unix.ENOENT
		}
		return st, d, nil
	}
	return st, -1, unix.ENOENT
}

func descend(s stack, top int, name string) (stack, error) {
	var out stack
	started := false
	for _, d := range s {
		if d == top {
			started = true
		}
		if !started {
			continue
		}
		var st unix.Stat_t
		if e := unix.Fstatat(d, name, &st, unix.AT_SYMLINK_NOFOLLOW); e != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if e == nil || !errors.Is(e, unix.ENOENT) {
				break // a whiteout or a file hides the lower layers
			}
			continue
		}
		fd, err := beneath(d, name, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			closeStack(out)
			return nil, err
		}
		out = append(out, fd)
		if opaque(fd) {
			break
		}
	}
	return out, nil
}

func (r *Rootfs) root() (stack, error) {
	var s stack
	for _, l := range r.layers {
		fd, err := unix.Dup(l)
		if err != nil {
			closeStack(s)
			return nil, err
		}
		s = append(s, fd)
	}
	return s, nil
}

// Open opens the regular file at p (absolute, in the box) for reading.
// Symbolic links on the way are resolved inside the box's root.
func (r *Rootfs) Open(p string) (*os.File, error) {
	if !path.IsAbs(p) || strings.ContainsRune(p, 0) {
		return nil, fmt.Errorf("%q is not an absolute path", p)
	}
	todo := splitPath(p)
	cur, err := r.root()
	if err != nil {
		return nil, err
	}
	var where []string // components of cur, for relative links
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			// Up again from the root: walk down from it.
			if len(where) > 0 {
				where = where[:len(where)-1]
			}
			closeStack(cur)
			if cur, err = r.walkDirs(where); err != nil {
				return nil, err
			}
			continue
		}
		st, top, err := entry(cur, name)
		if err != nil {
			closeStack(cur)
			return nil, fmt.Errorf("%s in the box: %w", p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			links++
			if links > maxLinks {
				closeStack(cur)
				return nil, fmt.Errorf("%s in the box: %w", p, unix.ELOOP)
			}
			target, err := readlinkat(top, name)
			if err != nil {
				closeStack(cur)
				return nil, fmt.Errorf("%s in the box: %w", p, err)
			}
			rest := append(splitPath(target), todo...)
			todo = rest
			if path.IsAbs(target) {
				where = nil
				closeStack(cur)
				if cur, err = r.root(); err != nil {
					return nil, err
				}
			}
		case unix.S_IFDIR:
			next, err := descend(cur, top, name)
			closeStack(cur)
			if err != nil {
				return nil, fmt.Errorf("%s in the box: %w", p, err)
			}
			cur = next
			where = append(where, name)
		case unix.S_IFREG:
			if len(todo) > 0 && !onlyDots(todo) {
				closeStack(cur)
				return nil, fmt.Errorf("%s in the box: %w", p, unix.ENOTDIR)
			}
			fd, err := beneath(top, name, unix.O_RDONLY|unix.O_NONBLOCK)
			closeStack(cur)
			if err != nil {
				return nil, fmt.Errorf("%s in the box: %w", p, err)
			}
			// A running box may have swapped it since the look above: what
			// was opened must still be a regular file (a fifo would be
			// read until the box's writer speaks).
			var ost unix.Stat_t
			if err := unix.Fstat(fd, &ost); err != nil || ost.Mode&unix.S_IFMT != unix.S_IFREG {
				unix.Close(fd)
				return nil, fmt.Errorf("%s in the box is not a regular file", p)
			}
			return os.NewFile(uintptr(fd), p), nil
		default:
			closeStack(cur)
			return nil, fmt.Errorf("%s in the box is not a regular file", p)
		}
	}
	closeStack(cur)
	return nil, fmt.Errorf("%s in the box is a directory", p)
}

func onlyDots(s []string) bool {
	for _, c := range s {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

func (r *Rootfs) walkDirs(comps []string) (stack, error) {
	cur, err := r.root()
	if err != nil {
		return nil, err
	}
	for _, c := range comps {
		_, top, err := entry(cur, c)
		if err != nil {
			closeStack(cur)
			return nil, err
		}
		next, err := descend(cur, top, c)
		closeStack(cur)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

func readlinkat(dir int, name string) (string, error) {
	b := make([]byte, 4096)
	n, err := unix.Readlinkat(dir, name, b)
	if err != nil {
		return "", err
	}
	if n >= len(b) {
		return "", unix.ENAMETOOLONG
	}
	return string(b[:n]), nil
}

func splitPath(p string) []string { return strings.Split(p, "/") }

// ReadFile reads the regular file at p in the box, at most max bytes.
func (r *Rootfs) ReadFile(p string, max int64) ([]byte, error) {
	f, err := r.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s in the box is larger than %d bytes", p, max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s in the box: %w", p, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s in the box is larger than %d bytes", p, max)
	}
	return b, nil
}

// Executable reports whether p in the box is a regular file with an
// execute bit.
func (r *Rootfs) Executable(p string) bool {
	ok, _ := r.executable(p)
	return ok
}

func (r *Rootfs) executable(p string) (bool, error) {
	f, err := r.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0, err
}
