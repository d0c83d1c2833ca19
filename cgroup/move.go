package cgroup

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// MayMove reports whether a process of uid may move a process from group
// from to group to (paths as in the "0::" line of /proc/PID/cgroup, under
// the hierarchy mounted at root): cgroup v2 lets it when the cgroup.procs
// of the two groups' common ancestor belongs to uid and is writable by it
// (and, which this does not check, both groups are in the mover's cgroup
// namespace). A CLI started under the user's systemd manager may move its
// own children into a box's cgroup there; one in an ssh login's session
// scope may not (the common ancestor is the user's slice, root's).
func MayMove(root, from, to string, uid int) bool {
	anc := CommonAncestor(from, to)
	fi, err := os.Stat(filepath.Join(root, anc, "cgroup.procs"))
	if err != nil {
		return false
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid) == uid && fi.Mode().Perm()&0o200 != 0
}

// CommonAncestor is the deepest group that contains both group a and b.
func CommonAncestor(a, b string) string {
	a, b = path.Clean("/"+a), path.Clean("/"+b)
	pa, pb := strings.Split(a, "/")[1:], strings.Split(b, "/")[1:]
	n := 0
	for n < len(pa) && n < len(pb) && pa[n] == pb[n] && pa[n] != "" {
		n++
	}
	return "/" + strings.Join(pa[:n], "/")
}
