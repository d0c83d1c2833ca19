package box

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Identify resolves the host path the user named for a volume source or
// --home once, at create: to an absolute path without symbolic links,
// and the device and inode of what it names then. Every start binds that
// path only if it is still reached without a symbolic link and is still
// that file (CheckSources here, and the init's bind itself).
func Identify(path string) (resolved string, dev, ino uint64, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", 0, 0, err
	}
	if resolved, err = filepath.EvalSymlinks(abs); err != nil {
		return "", 0, 0, err
	}
	st, err := statNoSymlinks(resolved)
	if err != nil {
		return "", 0, 0, err
	}
	return resolved, st.Dev, st.Ino, nil
}

// statNoSymlinks opens path without following any symbolic link on the
// way and returns what it opened.
func statNoSymlinks(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	err = unix.Fstat(fd, &st)
	return st, err
}

// CheckSources refuses to start box r when a volume source or its home is
// no longer the directory recorded at create: a symbolic link somewhere
// in its path (a box that can write the source's parent through another
// volume could plant one, pointing at the user's home), or another
// directory in its place. Sources recorded without an identity (boxes
// from before) are not checked.
func CheckSources(r *Record) error {
	check := func(what, path string, dev, ino uint64) error {
		if ino == 0 {
			return nil
		}
		st, err := statNoSymlinks(path)
		switch {
		case errors.Is(err, unix.ELOOP):
			err = errors.New("a symbolic link is in its path now")
		case err == nil && (st.Dev != dev || st.Ino != ino):
			err = errors.New("it is another directory than when the box was created")
		}
		if err != nil {
			return fmt.Errorf("box %s: %s %s: %w (hint: put the directory back, or devbox rm %s and create the box again)", r.Name, what, path, err, r.Name)
		}
		return nil
	}
	if r.Home != "" {
		if err := check("home", r.Home, r.HomeDev, r.HomeIno); err != nil {
			return err
		}
	}
	for _, v := range r.Volumes {
		if err := check("volume "+v.Target+", source", v.Source, v.Dev, v.Ino); err != nil {
			return err
		}
	}
	return nil
}
