package runtime

import (
	"fmt"
	"slices"
	"strings"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/runtime/mount"
	"golang.org/x/sys/unix"
)

// Staged mounts: a spare init (WarmUp) assembles the box's /proc, /sys and
// /dev ahead of its run, with every mount the plan makes there (the fresh
// instances, the device binds, devpts, the masks and read-only binds), on
// a tmpfs of its private mount namespace; Init then moves the three trees
// into the root filesystem, three calls instead of some thirty. They
// depend on nothing of the run's but the network mode and the id maps, and
// Init uses them only when its plan's steps there are exactly the staged
// ones.

// stagedTops are the trees a spare stages.
var stagedTops = []string{"/proc", "/sys", "/dev"}

// staged holds a spare's staged mounts: the staging directory (an O_PATH
// descriptor, -1 when there are none) and the plan steps made there.
var staged = struct {
	root  int
	steps []string
}{root: -1}

// isStaged reports whether plan step m is one a spare stages.
func isStaged(m mount.Mount) bool {
	for _, t := range stagedTops {
		if m.Kind != mount.Rootfs && m.Kind != mount.Pivot && (m.Target == t || strings.HasPrefix(m.Target, t+"/")) {
			return true
		}
	}
	return false
}

// stageMounts makes the staged mounts of a box with the given network
// mode on a tmpfs mounted on dir, in the process's mount namespace, which
// it makes private first.
func stageMounts(dir, net string) (err error) {
	ids, err := readIDMaps()
	if err != nil {
		return err
	}
	sample := &Spec{Version: SpecVersion, ID: "staged", Lowers: []string{"/"}, ContainerDir: "/staged", Args: []string{"true"}, Hostname: "staged", Net: net}
	plan, err := Plan(sample, ids)
	if err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mount namespace private: %w", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=700"); err != nil {
		return fmt.Errorf("mounting the staging tmpfs: %w", err)
	}
	defer func() {
		if err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	}()
	// Out of the way of the descriptors the run brings (at 0…15: the spare
	// holds placeholders there while it stages, internal/holder) and below
	// 64: a descriptor table never shrinks, and one sized for a descriptor
	// at 100 made the init's FDSize (which the box reads in
	// /proc/1/status) 128, a cold start's init's 64.
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	var steps []string
	for _, m := range plan {
		if !isStaged(m) {
			continue
		}
		if err := mount.Apply(root, m); err != nil {
			unix.Close(root)
			return err
		}
		steps = append(steps, m.String())
	}
	staged.root, staged.steps = root, steps
	return nil
}

// useStaged reports whether plan's steps under the staged trees are the
// staged ones.
func useStaged(plan []mount.Mount) bool {
	var steps []string
	for _, m := range plan {
		if isStaged(m) {
			steps = append(steps, m.String())
		}
	}
	return staged.root >= 0 && slices.Equal(steps, staged.steps)
}

// moveStaged moves the staged trees onto their places in the root
// filesystem root.
func moveStaged(root int) error {
	for _, t := range stagedTops {
		src, err := mount.Open(staged.root, t)
		if err != nil {
			return fmt.Errorf("staged %s: %w", t, err)
		}
		dst, err := mount.Ensure(root, t, false)
		if err == nil {
			err = unix.Mount(mount.FdPath(src), mount.FdPath(dst), "", unix.MS_MOVE, "")
			unix.Close(dst)
		}
		unix.Close(src)
		if err != nil {
			return fmt.Errorf("moving the staged %s: %w", t, err)
		}
	}
	unix.Close(staged.root)
	staged.root = -1
	trace.Mark("init: staged mounts moved")
	return nil
}
