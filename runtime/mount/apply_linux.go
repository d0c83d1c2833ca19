//go:build linux

package mount

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Apply carries out m inside the root directory root (an O_PATH or
// directory descriptor). It handles Fresh, Bind, Symlink, Mask and
// ReadOnly; Rootfs and Pivot belong to the runtime.
func Apply(root int, m Mount) error {
	var err error
	switch m.Kind {
	case Fresh:
		err = fresh(root, m)
	case Bind:
		err = bind(root, m)
	case Symlink:
		err = symlink(root, m)
	case Mask:
		err = mask(root, m)
	case ReadOnly:
		err = readOnly(root, m)
	default:
		return fmt.Errorf("mount %s: not applied by Apply", m)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", describe(m), err)
	}
	return nil
}

func describe(m Mount) string {
	switch m.Kind {
	case Fresh:
		return "mounting " + m.Type + " on " + m.Target
	case Bind:
		return "bind-mounting " + m.Source + " on " + m.Target
	case Symlink:
		return "creating symlink " + m.Target
	case Mask:
		return "masking " + m.Target
	case ReadOnly:
		return "making " + m.Target + " read-only"
	}
	return m.String()
}

func fresh(root int, m Mount) error {
	fd, err := Ensure(root, m.Target, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Mount(m.Source, FdPath(fd), m.Type, m.Flags, m.Data)
}

func bind(root int, m Mount) error {
	// Sources are chosen by the user (or are devbox's own files): they are
	// opened as they are, symbolic links included. Mounting from the
	// descriptor keeps what was checked and what is mounted the same file.
	// A source with an Ident was resolved once, when the user named it:
	// now no symbolic link is followed on the way, and it must still be
	// the same file.
	var src int
	var err error
	if m.Ident != nil {
		src, err = unix.Openat2(unix.AT_FDCWD, m.Source, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
		if err == unix.ELOOP {
			err = fmt.Errorf("%w (a symbolic link is in the path now)", err)
		}
	} else {
		src, err = unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if m.Optional && err == unix.ENOENT {
			return nil
		}
		return err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return err
	}
	if id := m.Ident; id != nil && (st.Dev != id.Dev || st.Ino != id.Ino) {
		return fmt.Errorf("it is not the directory it was when the box was created (device %d inode %d, now %d %d)", id.Dev, id.Ino, st.Dev, st.Ino)
	}
	dst, err := Ensure(root, m.Target, st.Mode&unix.S_IFMT != unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := unix.Mount(FdPath(src), FdPath(dst), "", (m.Flags&^unix.MS_RDONLY)|unix.MS_BIND, ""); err != nil {
		return err
	}
	if m.Flags&unix.MS_RDONLY != 0 {
		return setReadOnly(root, m.Target, dst, m.Flags&unix.MS_REC != 0)
	}
	return nil
}

// setReadOnly makes the mount just stacked on under (the descriptor of the
// mount point) read-only. The target is looked up again, which now lands on
// the new mount; the mount ids prove it.
func setReadOnly(root int, target string, under int, recursive bool) error {
	fd, err := Open(root, target)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	top, err1 := MountID(fd)
	below, err2 := MountID(under)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if top == below {
		return errors.New("the new mount is not visible at its target")
	}
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	err = unix.MountSetattr(fd, "", flags, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	if err != unix.ENOSYS {
		return err
	}
	// Before Linux 5.12: remount the top mount only, keeping the flags the
	// kernel locks on mounts inherited from a more privileged namespace.
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return err
	}
	return unix.Mount("", FdPath(fd), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|lockedFlags(sfs.Flags), "")
}

func lockedFlags(st int64) uintptr {
	var f uintptr
	for _, p := range [...]struct {
		st int64
		ms uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st&p.st != 0 {
			f |= p.ms
		}
	}
	return f
}

func symlink(root int, m Mount) error {
	parent, base := split(m.Target)
	pfd, err := Ensure(root, parent, false)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	err = unix.Symlinkat(m.Source, pfd, base)
	if err == unix.EEXIST {
		buf := make([]byte, len(m.Source)+1)
		if n, rerr := unix.Readlinkat(pfd, base, buf); rerr == nil && string(buf[:n]) == m.Source {
			return nil
		}
	}
	return err
}

func mask(root int, m Mount) error {
	fd, err := Open(root, m.Target)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", FdPath(fd), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=0555")
	}
	src := m.Source
	if src == "" {
		src = "/dev/null"
	}
	return unix.Mount(src, FdPath(fd), "", unix.MS_BIND, "")
}

func readOnly(root int, m Mount) error {
	fd, err := Open(root, m.Target)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Mount(FdPath(fd), FdPath(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return setReadOnly(root, m.Target, fd, true)
}

// FlagString spells the MS_* flags of f for messages and tests.
func FlagString(f uintptr) string {
	var out []string
	for _, p := range [...]struct {
		f    uintptr
		name string
	}{
		{unix.MS_RDONLY, "ro"},
		{unix.MS_NOSUID, "nosuid"},
		{unix.MS_NODEV, "nodev"},
		{unix.MS_NOEXEC, "noexec"},
		{unix.MS_BIND, "bind"},
		{unix.MS_REC, "rec"},
		{unix.MS_NOATIME, "noatime"},
		{unix.MS_RELATIME, "relatime"},
		{unix.MS_STRICTATIME, "strictatime"},
	} {
		if f&p.f != 0 {
			out = append(out, p.name)
			f &^= p.f
		}
	}
	if f != 0 {
		out = append(out, fmt.Sprintf("%#x", f))
	}
	return strings.Join(out, ",")
}
