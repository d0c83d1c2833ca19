package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// injectAccount writes the user into the box's /etc/passwd, /etc/group,
// /etc/shadow and a sudoers drop-in. It runs after the pivot, on the box's
// own root. Every path is resolved inside the root without following a
// symlink or crossing into another mount, so an image whose /etc/passwd is
// a symlink (say, into the bind-mounted home) is refused, not followed.
func injectAccount(a *Account) error {
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	etc, err := unix.Openat2(root, "etc", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) {
		if err = unix.Mkdirat(root, "etc", 0o755); err == nil {
			etc, err = unix.Openat(root, "etc", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
	}
	if err != nil {
		return fmt.Errorf("adding your account to the box: /etc: %w", err)
	}
	defer unix.Close(etc)
	shell := loginShell(a.Shell)
	if err := rewriteEtc(etc, "passwd", 0o644, func(b []byte) []byte { return addPasswd(b, *a, shell) }); err != nil {
		return err
	}
	if err := rewriteEtc(etc, "group", 0o644, func(b []byte) []byte { return addGroup(b, *a, a.Sudo) }); err != nil {
		return err
	}
	if _, err := unix.Openat2(etc, "shadow", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}); err == nil {
		if err := rewriteEtc(etc, "shadow", 0o640, func(b []byte) []byte { return addShadow(b, *a) }); err != nil {
			return err
		}
	}
	if a.Sudo {
		if err := unix.Mkdirat(etc, "sudoers.d", 0o750); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding your account to the box: sudoers.d: %w", err)
		}
		d, err := unix.Openat(etc, "sudoers.d", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("adding your account to the box: sudoers.d: %w", err)
		}
		defer unix.Close(d)
		line := []byte(a.Name + " ALL=(ALL:ALL) NOPASSWD: ALL\n")
		if err := rewriteEtc(d, "devbox-"+a.Name, 0o440, func([]byte) []byte { return line }); err != nil {
			return err
		}
	}
	return nil
}

// rewriteEtc replaces dir/name with edit(old content) through a temporary
// file and rename, keeping the old file's mode and owner. A name that is
// not a regular file is an error.
func rewriteEtc(dir int, name string, mode uint32, edit func([]byte) []byte) error {
	var old []byte
	uid, gid := 0, 0
	fd, err := unix.Openat2(dir, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV})
	switch {
	case err == nil:
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd)
			return fmt.Errorf("adding your account to the box: /etc/%s is not a regular file", name)
		}
		mode, uid, gid = st.Mode&0o7777, int(st.Uid), int(st.Gid)
		f := os.NewFile(uintptr(fd), name)
		old, err = io.ReadAll(io.LimitReader(f, 64<<20))
		f.Close()
		if err != nil {
			return fmt.Errorf("adding your account to the box: reading /etc/%s: %w", name, err)
		}
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("adding your account to the box: /etc/%s: %w (hint: the image's /etc/%s must be a regular file)", name, err, name)
	}
	data := edit(old)
	if string(data) == string(old) && old != nil {
		return nil
	}
	tmp := ".devbox-" + name + ".tmp"
	_ = unix.Unlinkat(dir, tmp, 0)
	wfd, err := unix.Openat(dir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("adding your account to the box: %w", err)
	}
	f := os.NewFile(uintptr(wfd), tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = unix.Fchown(wfd, uid, gid)
	}
	if werr == nil {
		werr = unix.Fchmod(wfd, mode)
	}
	f.Close()
	if werr == nil {
		werr = unix.Renameat(dir, tmp, dir, name)
	}
	if werr != nil {
		_ = unix.Unlinkat(dir, tmp, 0)
		return fmt.Errorf("adding your account to the box: writing /etc/%s: %w", name, werr)
	}
	return nil
}
