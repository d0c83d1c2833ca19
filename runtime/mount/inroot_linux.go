//go:build linux

package mount

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// resolveFlags confine a lookup to the root directory: ".." stops at the
// root, absolute symbolic links start from it, and /proc magic links (which
// could name anything) are refused.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// maxLinks bounds how many dangling symbolic links Ensure follows.
const maxLinks = 40

// FdPath is the path through which the kernel reaches fd's file.
func FdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// rel turns a path inside the box into one relative to the root descriptor.
func rel(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// Open returns an O_PATH descriptor of path, resolved inside root as if
// root were "/".
func Open(root int, path string) (int, error) {
	return openat2(root, path, unix.O_PATH|unix.O_CLOEXEC)
}

func openat2(root int, path string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolveFlags}
	var err error
	for range 16 {
		var fd int
		fd, err = unix.Openat2(root, rel(path), &how)
		// EAGAIN: a rename or mount raced with the confined lookup.
		if err != unix.EINTR && err != unix.EAGAIN {
			return fd, err
		}
	}
	return -1, err
}

// OpenFile opens path inside root for reading; it refuses anything but a
// regular file, so a FIFO or a device planted in an image cannot block or
// surprise the caller.
func OpenFile(root int, path string) (int, error) {
	fd, err := openat2(root, path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is not a regular file", path)
	}
	return fd, nil
}

// Ensure returns an O_PATH descriptor of path inside root, a directory, or
// a non-directory when file is set. What is missing is created: parent
// directories (0755) and the path itself (a directory, or an empty 0644
// file). A dangling symbolic link on the way is followed inside root and
// its target created, as opening it with O_CREAT would.
func Ensure(root int, path string, file bool) (int, error) {
	return ensure(root, path, file, 0)
}

func ensure(root int, path string, file bool, links int) (int, error) {
	fd, err := Open(root, path)
	if err == nil {
		if err := checkType(fd, file); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", path, err)
		}
		return fd, nil
	}
	if err != unix.ENOENT {
		return -1, err
	}
	parent, base := split(path)
	if base == "" || base == "." || base == ".." {
		return -1, err
	}
	pfd, err := ensure(root, parent, false, links)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if file {
		var nfd int
		nfd, err = unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0o644)
		if err == nil {
			unix.Close(nfd)
		}
	} else {
		err = unix.Mkdirat(pfd, base, 0o755)
	}
	switch {
	case err == nil:
		fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		if err := checkType(fd, file); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", path, err)
		}
		return fd, nil
	case err != unix.EEXIST:
		return -1, err
	}
	// The name exists but did not resolve: a dangling symbolic link. Its
	// text is resolved from the link's directory, which the kernel reaches
	// again by parent (not cleaned: ".." must be resolved physically).
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(pfd, base, buf)
	if err != nil {
		if err == unix.EINVAL { // not a link: something raced with us
			return -1, unix.EAGAIN
		}
		return -1, err
	}
	if links >= maxLinks {
		return -1, unix.ELOOP
	}
	target := string(buf[:n])
	if !strings.HasPrefix(target, "/") {
		target = parent + "/" + target
	}
	return ensure(root, target, file, links+1)
}

// split cuts path at its last element, keeping the parent as written.
func split(path string) (parent, base string) {
	path = strings.TrimRight(path, "/")
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "/", path
	}
	parent = path[:i]
	if strings.Trim(parent, "/") == "" {
		parent = "/"
	}
	return parent, path[i+1:]
}

func checkType(fd int, file bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case file && isDir:
		return errors.New("is a directory, a file is needed")
	case !file && !isDir:
		return errors.New("is not a directory")
	}
	return nil
}

// MountID returns the id of the mount fd lives on.
func MountID(fd int) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, err
	}
	return stx.Mnt_id, nil
}
