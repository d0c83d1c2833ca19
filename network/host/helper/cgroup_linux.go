package helper

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The helper joins the box's cgroup, so that the box's limits (--memory,
// --pids-limit, CPU) cover the memory and threads of its network too.
// Which cgroup is the box's is read from the box init's /proc/PID/cgroup
// at the hello, before the box has run anything of its own: the CLI
// cloned the init into the box's cgroup (CLONE_INTO_CGROUP), and only a
// cgroup named devbox-<id> (package cgroup's layout) is joined. Only on a
// cgroup v2 host: on a hybrid one the boxes get no cgroup.

// cgroupRoot is where the unified hierarchy is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// boxCgroup returns the cgroup v2 path in the contents of a
// /proc/PID/cgroup file when it is a box's (its last element devbox-<id>).
func boxCgroup(procCgroup []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		p, ok := strings.CutPrefix(sc.Text(), "0::")
		if !ok {
			continue
		}
		p = path.Clean(p)
		base := path.Base(p)
		if !strings.HasPrefix(p, "/") || !strings.HasPrefix(base, "devbox-") || base == "devbox-leaf" ||
			strings.HasSuffix(base, ".scope") || len(base) == len("devbox-") {
			return "", false
		}
		return p, true
	}
	return "", false
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

// joinBoxCgroup moves this process into the cgroup of the box whose init
// is initPID, and returns the cgroup to go back to (leaveBoxCgroup), or ""
// when it stayed where it was (no box cgroup, not cgroup v2).
func joinBoxCgroup(root string, initPID int) (string, error) {
	if !unified(root) {
		return "", nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(initPID) + "/cgroup")
	if err != nil {
		return "", err
	}
	box, ok := boxCgroup(b)
	if !ok {
		return "", nil
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
