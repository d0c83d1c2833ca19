package helper

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The helper joins the box's cgroup, so that the box's limits (--memory,
// --pids-limit, CPU) cover the memory and threads of its network too.
// Which cgroup is the box's the CLI says (Options.Cgroup): it made it.
// Not the init's /proc/PID/cgroup: after an early start the box's command
// may run before the helper looks, and a box allowed to mount cgroup2
// could have moved its init into a cgroup of its choosing below its own.
// Only a cgroup named devbox-<id> (package
// cgroup's layout) is joined, and only on a cgroup v2 host: on a hybrid
// one the boxes get no cgroup.

// cgroupRoot is where the unified hierarchy is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// boxCgroup reports whether group path p is a box's (absolute, clean, its
// last element devbox-<id>).
func boxCgroup(p string) bool {
	base := path.Base(p)
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && strings.HasPrefix(base, "devbox-") && base != "devbox-leaf" &&
		!strings.HasSuffix(base, ".scope") && len(base) > len("devbox-")
}

// ownCgroup returns the cgroup v2 path of the contents of /proc/self/cgroup.
func ownCgroup(procCgroup []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok && strings.HasPrefix(p, "/") {
			return path.Clean(p), true
		}
	}
	return "", false
}

// moveTo writes pid into the cgroup.procs of group p under root.
func moveTo(root, p string, pid int) error {
	f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(p), "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.Itoa(pid))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// unified reports whether root is a cgroup v2 mount.
func unified(root string) bool {
	var st unix.Statfs_t
	return unix.Statfs(root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// joinBoxCgroup moves this process into box, the box's cgroup (group
// path), and returns the cgroup to go back to (leaveBoxCgroup), or "" when
// it stayed where it was (no box cgroup, not cgroup v2).
func joinBoxCgroup(root, box string) (string, error) {
	if box == "" || !unified(root) {
		return "", nil
	}
	if !boxCgroup(box) {
		return "", fmt.Errorf("%q is not a box's cgroup", box)
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	own, ok := ownCgroup(self)
	if !ok || own == box {
		return "", nil
	}
	if err := moveTo(root, box, os.Getpid()); err != nil {
		return "", err
	}
	return own, nil
}

// leaveBoxCgroup moves this process back to the cgroup it came from, so
// that the box's cgroup can be removed while the helper cleans up. A
// cgroup that is gone already is no error.
func leaveBoxCgroup(root, own string) error {
	if own == "" {
		return nil
	}
	err := moveTo(root, own, os.Getpid())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
