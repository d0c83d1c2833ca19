package store

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// usage returns the disk usage (st_blocks) of the entry name of directory
// rel below the root and, for a directory, of everything below it that
// the user can read: trees owned by subordinate ids may hold directories
// only the box's root can list, which are counted as themselves only.
func (r *rootDir) usage(rel, name string) int64 {
	fd, err := r.openDir(rel)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	return usageAt(fd, name, 0)
}

// usageAt is usage relative to the directory dirfd, depth levels below
// the entry it started with.
func usageAt(dirfd int, name string, depth int) int64 {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return 0
	}
	n := st.Blocks * 512
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || depth > 256 {
		return n
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return n
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	for {
		batch, err := f.Readdirnames(1024)
		for _, c := range batch {
			n += usageAt(fd, c, depth+1)
		}
		if err != nil || len(batch) == 0 {
			return n
		}
	}
}

// DiskUsage is usage for any path (a box directory): what the user can
// read of it, following no symbolic link below the path's parent.
func DiskUsage(path string) int64 {
	fd, err := unix.Open(filepath.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	return usageAt(fd, filepath.Base(path), 0)
}

// readFile reads the regular file rel below the root, without following a
// symbolic link, up to max bytes (more is an error).
func (r *rootDir) readFile(rel string, max int64) ([]byte, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat2(r.fd, rel, how)
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New(rel + " is not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errors.New(rel + " is too large")
	}
	return b, nil
}
