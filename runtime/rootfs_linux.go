package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"github.com/devbox-dev/devbox/runtime/mount"
	"golang.org/x/sys/unix"
)

// How the root filesystem was assembled.
const (
	rootfsOverlay = "overlay"
	rootfsFuse    = "fuse-overlayfs"
	rootfsCopy    = "copy"
)

// forceRootfs makes mountRootfs skip the kernel overlay ("fuse" or "copy");
// tests set it to exercise the fallbacks.
var forceRootfs string

// maxMountData is what mount(2) reliably copies of its option string (a
// page, terminating NUL included).
const maxMountData = 4000

// mountRootfs assembles the root filesystem described by m and returns an
// O_PATH descriptor of its root, a mount point ready for pivot_root. The
// kernel overlay is tried first; when the kernel refuses it in the user
// namespace, fuse-overlayfs, and failing that a copy of the layers.
func (b *box) mountRootfs(m mount.Mount) (int, error) {
	ov := m.Overlay
	if _, err := b.dir.Lstat("rootfs-copy"); err == nil {
		// An earlier run fell back to a copy: the box's files live there.
		b.rootfs = rootfsCopy
		return b.bindCopy()
	}
	if _, err := b.dir.Lstat("work/work/incompat/volatile"); err == nil {
		// Left by an ephemeral (volatile) run that did not finish: the
		// kernel refuses the work directory until it is cleared, and a
		// work directory holds nothing worth keeping.
		if err := b.dir.RemoveAll("work"); err != nil {
			return -1, fmt.Errorf("clearing the box's work directory: %w", err)
		}
	}
	for _, d := range []string{"upper", "work", "merged"} {
		if err := b.dir.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return -1, fmt.Errorf("creating the box's %s directory: %w", d, err)
		}
	}
	merged, err := unix.Openat(b.dirFd, "merged", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", ov.Merged, err)
	}
	defer unix.Close(merged)

	var kernelErr error
	switch forceRootfs {
	case "":
		kernelErr = mountOverlay(ov, m.Data, merged)
		if kernelErr == nil {
			b.rootfs = rootfsOverlay
			return b.openMounted("merged", merged)
		}
		if errors.Is(kernelErr, unix.EBUSY) {
			// Not a refusal of overlayfs: another mount uses this upper
			// directory (the kernel checks with index=on). A fallback
			// would share it.
			return -1, fmt.Errorf("mounting the box's root filesystem: %w (hint: another mount uses %s)", kernelErr, ov.Upper)
		}
	default:
		kernelErr = fmt.Errorf("disabled for a test (%s)", forceRootfs)
	}
	if b.memory {
		// The fallbacks would copy the image into memory, or run
		// fuse-overlayfs on it: go back to the disk first.
		if err := b.scratchOnDisk(); err != nil {
			return -1, err
		}
		return b.mountRootfs(m)
	}

	fuseErr := errors.New("fuse-overlayfs is not installed")
	if forceRootfs != "copy" {
		if bin := findFuseOverlayfs(); bin != "" {
			fuseErr = b.mountFuse(bin, ov)
			if fuseErr == nil {
				warn("the kernel refused overlayfs in the user namespace (%v): using fuse-overlayfs, which is slower", kernelErr)
				b.rootfs = rootfsFuse
				return b.openMounted("merged", merged)
			}
		}
	}
	warn("the kernel refused overlayfs in the user namespace (%v) and %v: copying the image into %s, which is slow and uses disk space (hint: install fuse-overlayfs)",
		kernelErr, fuseErr, ov.Copy)
	if err := b.copyLayers(ov.Lower); err != nil {
		return -1, fmt.Errorf("copying the image layers: %w (hint: install fuse-overlayfs)", err)
	}
	b.rootfs = rootfsCopy
	return b.bindCopy()
}

// mountOverlay mounts the kernel overlay on the directory merged. Options
// that do not fit a mount(2) option string (many layers, or paths with
// ',' or ':') go through fsconfig(2), one layer at a time.
func mountOverlay(ov *mount.Overlay, data string, merged int) error {
	if mount.Plain(ov) && len(data) <= maxMountData {
		return unix.Mount("overlay", mount.FdPath(merged), "overlay", 0, data)
	}
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fsfd)
	for _, l := range ov.Lower {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			return fmt.Errorf("adding layer %s: %w (Linux 6.8 or later is needed for this many layers)", l, err)
		}
	}
	if err := unix.FsconfigSetString(fsfd, "upperdir", ov.Upper); err != nil {
		return err
	}
	if err := unix.FsconfigSetString(fsfd, "workdir", ov.Work); err != nil {
		return err
	}
	if err := unix.FsconfigSetFlag(fsfd, "userxattr"); err != nil {
		return err
	}
	if ov.Volatile {
		if err := unix.FsconfigSetFlag(fsfd, "volatile"); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return err
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	return unix.MoveMount(mfd, "", merged, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// openMounted opens name in ContainerDir again, now that a filesystem is
// mounted on it, and checks that the lookup reached the new mount.
func (b *box) openMounted(name string, under int) (int, error) {
	fd, err := unix.Openat(b.dirFd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the root filesystem: %w", err)
	}
	top, err1 := mount.MountID(fd)
	below, err2 := mount.MountID(under)
	if err := errors.Join(err1, err2); err != nil || top == below {
		unix.Close(fd)
		return -1, fmt.Errorf("opening the root filesystem: not mounted (%v)", err)
	}
	return fd, nil
}

func findFuseOverlayfs() string {
	if p, err := exec.LookPath("fuse-overlayfs"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs", "/bin/fuse-overlayfs"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// mountFuse mounts the overlay with fuse-overlayfs. It runs as root of the
// user namespace, so it keeps the files' owners, and allow_other lets the
// box's other users reach the mount.
func (b *box) mountFuse(bin string, ov *mount.Overlay) error {
	if !mount.Plain(ov) {
		return errors.New("fuse-overlayfs cannot take paths containing ',' or ':'")
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fuse-overlayfs needs /dev/fuse: %w", err)
	}
	unix.Close(fd)
	var out bytes.Buffer
	c := exec.Command(bin, "-o", mount.OverlayData(ov)+",allow_other", ov.Merged)
	c.Stdout, c.Stderr = &out, &out
	c.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("fuse-overlayfs failed: %s", msg)
	}
	return nil
}

// bindCopy makes ContainerDir/rootfs-copy a mount point and opens it.
func (b *box) bindCopy() (int, error) {
	under, err := unix.Openat(b.dirFd, "rootfs-copy", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the copied root filesystem: %w", err)
	}
	defer unix.Close(under)
	if err := unix.Mount(mount.FdPath(under), mount.FdPath(under), "", unix.MS_BIND, ""); err != nil {
		return -1, fmt.Errorf("bind-mounting the copied root filesystem: %w", err)
	}
	return b.openMounted("rootfs-copy", under)
}
