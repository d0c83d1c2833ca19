package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/runtime/mount"
	"golang.org/x/sys/unix"
)

// StageLockRO is the stage of the short-lived helper that locks the box's
// read-only binds (lockReadOnly).
const StageLockRO = "lockro"

// Why a helper: a read-only bind made by the init lives in the box's mount
// namespace, which the box's user namespace owns, so anything in the box
// holding CAP_SYS_ADMIN there (run --cap-add SYS_ADMIN, or whatever gains
// it) could remount it read-write, and the host directory with it. The
// kernel locks a mount's flags (MNT_LOCK_READONLY) when it copies a mount
// namespace into one owned by a less privileged user namespace, and the
// lock survives open_tree(OPEN_TREE_CLONE) and move_mount. So the init
// forks this helper into a nested user namespace (the same ids, mapped one
// to one) and a copy of its mount namespace, where every read-only bind is
// locked; the helper clones each and passes the clones back over a socket;
// the init detaches its own binds and mounts the locked clones in their
// place. Nothing in the box can then make them writable: a remount, a
// mount_setattr or a new bind of them fails with EPERM or stays read-only.

// readOnlyTargets are the targets of s's read-only binds, outermost first,
// without those below another one (a recursive clone carries them).
func readOnlyTargets(s *Spec) []string {
	var t []string
	for _, m := range s.Mounts {
		if m.ReadOnly && !m.Tmpfs && path.IsAbs(m.Target) {
			t = append(t, path.Clean(m.Target))
		}
	}
	sort.Strings(t)
	var out []string
	for _, p := range t {
		below := false
		for _, o := range out {
			if p == o || o == "/" || strings.HasPrefix(p, o+"/") {
				below = true
			}
		}
		if !below {
			out = append(out, p)
		}
	}
	return out
}

// lockReadOnly replaces the mounts at targets (paths in root, the box's
// root after the pivot) by clones whose read-only flag the box cannot
// clear. Targets that are not there (optional binds) are skipped.
func lockReadOnly(root int, targets []string, ids IDMaps) error {
	if len(targets) == 0 {
		return nil
	}
	fds, err := syscall.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("locking read-only binds: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "lockro"), os.NewFile(uintptr(fds[1]), "lockro-helper")
	defer ours.Close()
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       append([]string{"devbox-lockro"}, targets...),
		Env:        []string{"_DEVBOX_STAGE=" + StageLockRO, "GOMAXPROCS=1"},
		ExtraFiles: []*os.File{theirs},
		Stderr:     os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
			UidMappings:                oneToOne(ids.UIDs),
			GidMappings:                oneToOne(ids.GIDs),
			GidMappingsEnableSetgroups: ids.Setgroups,
			Pdeathsig:                  unix.SIGKILL,
		},
	}
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		return fmt.Errorf("locking read-only binds: starting the helper: %w", err)
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*len(targets)))
	n, oobn, _, _, rerr := unix.Recvmsg(fds[0], buf, oob, unix.MSG_CMSG_CLOEXEC)
	werr := cmd.Wait()
	var clones []int
	if rerr == nil && oobn > 0 {
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				clones = append(clones, got...)
			}
		}
	}
	defer func() {
		for _, fd := range clones {
			unix.Close(fd)
		}
	}()
	if rerr != nil || werr != nil || n == 0 {
		return fmt.Errorf("locking read-only binds: the helper failed: %v", errors.Join(rerr, werr))
	}
	var done []string
	if s := string(buf[:n]); s != "\n" {
		done = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	}
	if len(done) != len(clones) {
		return fmt.Errorf("locking read-only binds: the helper sent %d mounts for %d targets", len(clones), len(done))
	}
	for i, t := range done {
		if err := replaceMount(root, t, clones[i]); err != nil {
			return fmt.Errorf("locking the read-only bind on %s: %w", t, err)
		}
	}
	return nil
}

// replaceMount detaches the mount at target and mounts tree there.
func replaceMount(root int, target string, tree int) error {
	top, err := mount.Open(root, target)
	if err != nil {
		return err
	}
	err = unix.Unmount(mount.FdPath(top), unix.MNT_DETACH)
	unix.Close(top)
	if err != nil {
		return err
	}
	under, err := mount.Open(root, target)
	if err != nil {
		return err
	}
	defer unix.Close(under)
	return unix.MoveMount(tree, "", under, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// oneToOne maps every id of m to itself, one namespace further down.
func oneToOne(m IDMap) []syscall.SysProcIDMap {
	var out []syscall.SysProcIDMap
	for _, r := range m {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(r.Inside), HostID: int(r.Inside), Size: int(r.Count)})
	}
	return out
}

// LockROMain is the helper: in its copy of the box's mount namespace the
// read-only binds named in argv are locked; it clones each (with what is
// mounted below it) and sends the clones, and the list of the targets
// found, on fd 3.
func LockROMain() int {
	sock := 3
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devbox: lockro: %v\n", err)
		return 125
	}
	var found []string
	var clones []int
	for _, t := range os.Args[1:] {
		fd, err := mount.Open(root, t)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "devbox: lockro: %s: %v\n", t, err)
			return 125
		}
		c, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
		unix.Close(fd)
		if err != nil {
			fmt.Fprintf(os.Stderr, "devbox: lockro: cloning %s: %v\n", t, err)
			return 125
		}
		found = append(found, t)
		clones = append(clones, c)
	}
	msg := strings.Join(found, "\n") + "\n"
	var oob []byte
	if len(clones) > 0 {
		oob = unix.UnixRights(clones...)
	}
	if err := unix.Sendmsg(sock, []byte(msg), oob, nil, 0); err != nil {
		fmt.Fprintf(os.Stderr, "devbox: lockro: %v\n", err)
		return 125
	}
	return 0
}
