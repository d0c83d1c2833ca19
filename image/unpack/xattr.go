package unpack

import (
	"archive/tar"
	"bytes"
	"os"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futimens sets the access and modification times of the open file fd
// (utimensat with a NULL path).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// keepXattr reports whether an extended attribute from an image is applied.
// user.overlay.* is overlayfs's own namespace under "userxattr" (opaque,
// redirect, metacopy...): an image must not forge it.
func keepXattr(name string) bool {
	if strings.HasPrefix(name, "user.overlay.") {
		return false
	}
	return strings.HasPrefix(name, "user.") || name == "security.capability"
}

func hasXattrs(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			return true
		}
	}
	return false
}

// headerXattrs returns the xattr names of hdr, sorted.
func headerXattrs(hdr *tar.Header) []string {
	var names []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			names = append(names, k[len(paxXattrPrefix):])
		}
	}
	sort.Strings(names)
	return names
}

// setXattrs applies the kept xattrs of hdr to the open file or directory fd.
func (u *unpacker) setXattrs(fd int, rel string, hdr *tar.Header) error {
	if len(hdr.PAXRecords) == 0 {
		return nil
	}
	for _, name := range headerXattrs(hdr) {
		if err := u.setXattr(fd, rel, name, []byte(hdr.PAXRecords[paxXattrPrefix+name])); err != nil {
			return err
		}
	}
	return nil
}

func (u *unpacker) setXattr(fd int, rel, name string, value []byte) error {
	if !keepXattr(name) {
		u.logf("unpack: dropping xattr %q of %q", name, rel)
		return nil
	}
	err := unix.Fsetxattr(fd, name, value, 0)
	switch {
	case err == nil:
		return nil
	case err == unix.ENOTSUP:
		u.logf("unpack: filesystem does not support xattr %q of %q, dropped", name, rel)
		return nil
	case err == unix.EPERM && u.opts.IgnoreChownErrors:
		u.logf("unpack: not permitted to set xattr %q of %q, dropped", name, rel)
		return nil
	}
	return &os.PathError{Op: "setxattr " + name, Path: rel, Err: err}
}

// dropXattrs notes the xattrs of an entry that cannot carry them here
// (symbolic links and FIFOs).
func (u *unpacker) dropXattrs(rel string, hdr *tar.Header) {
	for _, name := range headerXattrs(hdr) {
		u.logf("unpack: dropping xattr %q of non-regular file %q", name, rel)
	}
}

// copyXattrs copies the kept xattrs of the open file src to dst.
func (u *unpacker) copyXattrs(src, dst int, rel string) error {
	names, err := listXattrs(src)
	if err != nil {
		return &os.PathError{Op: "listxattr", Path: rel, Err: err}
	}
	for _, name := range names {
		if !keepXattr(name) {
			continue
		}
		value, err := getXattr(src, name)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "getxattr " + name, Path: rel, Err: err}
		}
		if err := u.setXattr(dst, rel, name, value); err != nil {
			return err
		}
	}
	return nil
}

func listXattrs(fd int) ([]string, error) {
	for {
		sz, err := unix.Flistxattr(fd, nil)
		if err == unix.ENOTSUP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if sz == 0 {
			return nil, nil
		}
		buf := make([]byte, sz)
		sz, err = unix.Flistxattr(fd, buf)
		if err == unix.ERANGE {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, b := range bytes.Split(buf[:sz], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

func getXattr(fd int, name string) ([]byte, error) {
	for {
		sz, err := unix.Fgetxattr(fd, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, sz)
		sz, err = unix.Fgetxattr(fd, name, buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:sz], nil
	}
}

// isOpaque reports whether the open directory fd carries the opaque marker.
func isOpaque(fd int) bool {
	var b [2]byte
	n, err := unix.Fgetxattr(fd, opaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}
