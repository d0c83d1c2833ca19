package cgroup

import (
	"context"
	"errors"
	"fmt"
	"github.com/devbox-dev/devbox/internal/safefile"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/devbox-dev/devbox/internal/trace"
)

// SharedScope is the unit name of the delegated scope, in the user
// manager's app.slice, that holds a sub-cgroup per box (Kind Shared).
const SharedScope = "devbox.scope"

// KeeperLeaf is the child of devbox.scope that holds its keeper process
// (package cgroup/keeper): a scope without processes is collected.
const KeeperLeaf = "keeper"

// lockFile, under $XDG_RUNTIME_DIR/devbox, serialises the creation of
// devbox.scope: two CLIs racing end with one scope.
const lockFile = "cgroup.lock"

var (
	// errNoScope: devbox.scope does not exist (yet).
	errNoScope = errors.New(SharedScope + " does not exist")
	// errNoKeeper: devbox.scope's keeper is gone (killed by hand).
	errNoKeeper = errors.New("has no keeper process")
)

// userManager returns the group path of user@uid.service that contains
// group self, or "" when self is not inside the user's manager.
func userManager(self string, uid int) string {
	unit := fmt.Sprintf("user@%d.service", uid)
	parts := strings.Split(self, "/")
	for i, p := range parts {
		if p == unit {
			return strings.Join(parts[:i+1], "/")
		}
	}
	return ""
}

// decideShared returns the Shared decision when the caller may use
// devbox.scope: a systemd user manager runs the caller's own cgroup, and
// the caller may write cgroup.procs of the common ancestor of its cgroup
// and a box's (MayMove), which clone3's CLONE_INTO_CGROUP requires; and
// devbox.scope is
// either usable or missing (and can be created). Otherwise ok is false and
// the caller gets a scope per box.
func decideShared(h Host) (d Decision, ok bool) {
	self, err := h.Self()
	if err != nil {
		return Decision{}, false
	}
	mgr := userManager(self, h.UID)
	if mgr == "" {
		// An ssh or console login (session-N.scope): the common
		// ancestor is root's user-UID.slice.
		return Decision{}, false
	}
	base := mgr + "/app.slice/" + SharedScope
	if !MayMove(h.Root, self, base, h.UID) {
		return Decision{}, false
	}
	err = sharedReady(h, base)
	if err == nil {
		return Decision{Kind: Shared, Base: base, Ready: true}, true
	}
	if h.StartKeeper == nil || h.RuntimeDir == "" {
		trace.Mark("cgroup: " + SharedScope + " not used: " + err.Error())
		return Decision{}, false
	}
	// Missing, or another devbox is making it right now: Setup looks
	// again under the lock, and refuses one that is still unusable.
	return Decision{Kind: Shared, Base: base}, true
}

// sharedReady checks, by path and without D-Bus, that base is a usable
// devbox.scope: a real cgroup2 directory (no symbolic link on the way),
// delegated to the caller, with a live keeper. Everything there is input:
// another user's directory or a plain one is refused. It returns errNoScope
// when base does not exist.
func sharedReady(h Host, base string) error {
	dir := filepath.Join(h.Root, base)
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return errNoScope
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	root, err := filepath.EvalSymlinks(h.Root)
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(dir); err != nil || real != filepath.Join(root, base) {
		return fmt.Errorf("%s goes through a symbolic link", dir)
	}
	if !h.isCgroup2(dir) {
		return fmt.Errorf("%s is not in a cgroup2 file system", dir)
	}
	if err := Delegated(h.Root, base, h.UID); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, KeeperLeaf, "cgroup.procs"))
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return fmt.Errorf("%s %w", base, errNoKeeper)
	}
	return nil
}

func (h Host) isCgroup2(dir string) bool {
	if h.IsCgroup2 != nil {
		return h.IsCgroup2(dir)
	}
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// SharedProperties are the properties of devbox.scope: the keeper (pid) is
// its first process, the subtree is delegated to the user, and a failed
// scope is collected (so that it can be started again).
func SharedProperties(pid int) []sdbus.Property {
	return []sdbus.Property{
		sdbus.PropDescription("devbox: the boxes of this user"),
		sdbus.PropSlice("app.slice"),
		sdbus.PropPids(uint32(pid)),
		{Name: "Delegate", Value: godbus.MakeVariant(true)},
		{Name: "CollectMode", Value: godbus.MakeVariant("inactive-or-failed")},
	}
}

// createShared starts devbox.scope at group path base, once: under a lock
// in the runtime directory, unless another CLI made it meanwhile, it starts
// a keeper, asks the user manager (one D-Bus round trip) for the scope with
// the keeper in it, moves the keeper to the leaf and enables the
// controllers for the boxes.
func createShared(ctx context.Context, h Host, base string) (err error) {
	unlock, err := lockShared(h)
	if err != nil {
		return err
	}
	defer unlock()
	switch err := sharedReady(h, base); {
	case errors.Is(err, errNoKeeper):
		return restartKeeper(h, base)
	case !errors.Is(err, errNoScope):
		return err // nil: made by another devbox meanwhile; else unusable
	}
	keeper, err := h.StartKeeper()
	if err != nil {
		return fmt.Errorf("starting the keeper of %s: %w", SharedScope, err)
	}
	defer func() {
		if err != nil {
			_ = keeper.Kill()
		}
	}()
	if err := startUnit(ctx, h, SharedScope, SharedProperties(keeper.Pid)); err != nil {
		return err
	}
	trace.Mark("cgroup: devbox.scope started")
	if err := prepareBase(h.Root, base, KeeperLeaf); err != nil {
		return err
	}
	return sharedReady(h, base)
}

// restartKeeper gives devbox.scope, whose keeper is gone, a new one while
// boxes still keep the scope alive (an empty scope is being collected by
// systemd: it is left alone, and this box gets a scope of its own). No
// D-Bus: the caller may move the new keeper into devbox.scope/keeper, as
// Decide checked (MayMove).
func restartKeeper(h Host, base string) (err error) {
	dir := filepath.Join(h.Root, base)
	if !populated(dir) {
		return fmt.Errorf("%s has no process left: systemd collects it", base)
	}
	keeper, err := h.StartKeeper()
	if err != nil {
		return fmt.Errorf("starting the keeper of %s: %w", SharedScope, err)
	}
	defer func() {
		if err != nil {
			_ = keeper.Kill()
		}
	}()
	f, err := os.OpenFile(filepath.Join(dir, KeeperLeaf, "cgroup.procs"), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("restarting the keeper of %s: %w", base, err)
	}
	_, err = f.WriteString(strconv.Itoa(keeper.Pid))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("moving the keeper into %s: %w", path.Join(base, KeeperLeaf), err)
	}
	trace.Mark("cgroup: devbox.scope's keeper restarted")
	return sharedReady(h, base)
}

// lockShared takes the lock on devbox.scope's creation.
func lockShared(h Host) (func(), error) {
	dir := filepath.Join(h.RuntimeDir, "devbox")
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if st := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || int(st.Uid) != h.UID {
		return nil, fmt.Errorf("%s is not a directory of yours", dir)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	err = safefile.Flock(int(f.Fd()), unix.LOCK_EX)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// runtimeDir returns $XDG_RUNTIME_DIR when it is a directory of uid's, else "".
func runtimeDir(uid int) string {
	d := os.Getenv("XDG_RUNTIME_DIR")
	if d == "" || !filepath.IsAbs(d) {
		return ""
	}
	fi, err := os.Stat(d)
	if err != nil || !fi.IsDir() || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
		return ""
	}
	return d
}
