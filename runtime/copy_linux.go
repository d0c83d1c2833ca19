package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyLayers merges the layers (top-most first) into ContainerDir/rootfs-copy
// the way overlayfs would show them: bottom layer first, whiteouts (0:0
// character devices) delete, opaque directories (user.overlay.opaque=y)
// hide what the layers below put there. It works in rootfs-copy.tmp and
// renames it when done, so an interrupted copy is never used.
func (b *box) copyLayers(lowers []string) error {
	const tmp = "rootfs-copy.tmp"
	if err := b.dir.RemoveAll(tmp); err != nil {
		return err
	}
	if err := b.dir.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	dst, err := b.dir.OpenRoot(tmp)
	if err != nil {
		return err
	}
	defer dst.Close()
	for i := len(lowers) - 1; i >= 0; i-- {
		src, err := os.OpenRoot(lowers[i])
		if err != nil {
			return err
		}
		err = mergeLayer(src, dst)
		src.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", lowers[i], err)
		}
	}
	return b.dir.Rename(tmp, "rootfs-copy")
}

// mergeLayer copies the layer src onto dst. Both are os.Root: no symbolic
// link from the image is ever followed out of either.
func mergeLayer(src, dst *os.Root) error {
	return mergeDir(src, dst, ".")
}

func mergeDir(src, dst *os.Root, dir string) error {
	f, err := src.Open(dir)
	if err != nil {
		return err
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		fi, err := src.Lstat(p)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode()
		switch {
		case mode&fs.ModeCharDevice != 0 && st != nil && st.Rdev == 0:
			// A whiteout: the name is deleted from the layers below.
			if err := dst.RemoveAll(p); err != nil {
				return err
			}
		case mode.IsDir():
			if err := mergeSubdir(src, dst, p, fi, st); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			target, err := src.Readlink(p)
			if err != nil {
				return err
			}
			if err := dst.RemoveAll(p); err != nil {
				return err
			}
			if err := dst.Symlink(target, p); err != nil {
				return err
			}
			if err := chownLike(dst, p, st, true); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := dst.RemoveAll(p); err != nil {
				return err
			}
			if err := copyFile(src, dst, p, fi, st); err != nil {
				return err
			}
		default:
			// Devices, FIFOs and sockets cannot all be made in a user
			// namespace, and a box's /dev is its own: they are skipped.
		}
	}
	return nil
}

func mergeSubdir(src, dst *os.Root, p string, fi fs.FileInfo, st *syscall.Stat_t) error {
	opaque := false
	if f, err := src.Open(p); err == nil {
		var buf [8]byte
		rc, cerr := f.SyscallConn()
		if cerr == nil {
			_ = rc.Control(func(fd uintptr) {
				n, err := unix.Fgetxattr(int(fd), "user.overlay.opaque", buf[:])
				opaque = err == nil && n == 1 && buf[0] == 'y'
			})
		}
		f.Close()
	}
	if di, err := dst.Lstat(p); err == nil && (!di.IsDir() || opaque) {
		if err := dst.RemoveAll(p); err != nil {
			return err
		}
	}
	if err := dst.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := mergeDir(src, dst, p); err != nil {
		return err
	}
	if err := chownLike(dst, p, st, false); err != nil {
		return err
	}
	return dst.Chmod(p, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

func copyFile(src, dst *os.Root, p string, fi fs.FileInfo, st *syscall.Stat_t) error {
	in, err := src.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := dst.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := chownLike(dst, p, st, false); err != nil {
		return err
	}
	// After the chown, which clears set-id bits.
	return dst.Chmod(p, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

func chownLike(dst *os.Root, p string, st *syscall.Stat_t, link bool) error {
	if st == nil {
		return nil
	}
	if link {
		return dst.Lchown(p, int(st.Uid), int(st.Gid))
	}
	return dst.Chown(p, int(st.Uid), int(st.Gid))
}
