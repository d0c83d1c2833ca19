package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrUnsafeStore marks a store that another user could change: its
// directory, or a directory above it, is writable by others or owned by
// someone else. devbox refuses it (exit code 125, docs/exit-codes.md).
var ErrUnsafeStore = errors.New("the store is not yours alone")

// pathDir is what the ownership rule needs to know of one element of a
// path: the element itself, never what a symbolic link there points to.
type pathDir struct {
	Path    string
	UID     int
	GID     int
	Mode    fs.FileMode // as os.Lstat reports it (type, permission, sticky)
	Missing bool        // not there yet: devbox will create it, 0700
}

// checkChain applies the store's ownership rule to chain, the elements of
// one absolute path from "/" down to the store (the last element), for
// the user uid:
//
//   - the store directory is uid's and neither group- nor other-writable;
//   - every directory above it is uid's or root's, and one writable by
//     group or others must have the sticky bit (as /tmp has);
//   - below such a sticky, shared directory, every element down to the
//     store is uid's and not writable by group or others (the sticky bit
//     protects only entries owned by their creator);
//   - a symbolic link on the way is uid's or root's; the directory holding
//     it is checked as any other, and the path it leads to is checked
//     separately (see checkOwnership).
//
// Missing elements (the tail of the path devbox is about to create) pass:
// devbox creates them 0700 as uid.
//
// Group-writable counts as writable by others unless the group is the
// user's private group (pgid, -1 for none): a group named as the user,
// with no other member, as distributions with user private groups create
// (their umask 002 makes ~/.local/share 0775).
func checkChain(chain []pathDir, uid, pgid int) error {
	shared := "" // the sticky, shared directory above, if any
	for i, d := range chain {
		if d.Missing {
			continue
		}
		last := i == len(chain)-1
		writable := d.Mode.Perm()&0o002 != 0 || (d.Mode.Perm()&0o020 != 0 && (pgid < 0 || d.GID != pgid))
		isLink := d.Mode&fs.ModeSymlink != 0
		if !isLink && !d.Mode.IsDir() {
			return fmt.Errorf("%w: %s is not a directory (hint: choose another store with --store or DEVBOX_STORE)", ErrUnsafeStore, d.Path)
		}
		switch {
		case last && d.UID != uid:
			return fmt.Errorf("%w: %s belongs to uid %d, not to you (hint: choose a store of your own, e.g. --store ~/.local/share/devbox; another user made this one, so do not use what is in it)", ErrUnsafeStore, d.Path, d.UID)
		case d.UID != uid && d.UID != 0:
			return fmt.Errorf("%w: %s, above the store, belongs to uid %d (hint: keep the store in a directory of yours, e.g. --store ~/.local/share/devbox)", ErrUnsafeStore, d.Path, d.UID)
		case shared != "" && d.UID != uid:
			return fmt.Errorf("%w: %s is in the shared directory %s but is not yours (hint: keep the store in a directory of yours, e.g. --store ~/.local/share/devbox)", ErrUnsafeStore, d.Path, shared)
		case isLink:
			continue // its target is checked as a path of its own
		case writable && last:
			return fmt.Errorf("%w: %s is writable by others (mode %04o) (hint: chmod 700 %s)", ErrUnsafeStore, d.Path, d.Mode.Perm(), d.Path)
		case writable && (shared != "" || d.Mode&fs.ModeSticky == 0):
			fix := fmt.Sprintf("chmod go-w %s", d.Path)
			if d.UID != uid {
				fix = "keep the store in a directory of yours, e.g. --store ~/.local/share/devbox"
			}
			return fmt.Errorf("%w: %s, above the store, is writable by others (mode %04o), who could replace the store (hint: %s)", ErrUnsafeStore, d.Path, d.Mode.Perm()|stickyBits(d.Mode), fix)
		case writable:
			shared = d.Path
		}
	}
	return nil
}

func stickyBits(m fs.FileMode) fs.FileMode {
	if m&fs.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}

// lstatChain describes each element of the absolute path p from "/" down,
// without following a symbolic link at any of them. Elements that do not
// exist are marked Missing (and so is everything below the first).
func lstatChain(p string) ([]pathDir, error) {
	p = filepath.Clean(p)
	var out []pathDir
	prefixes := []string{"/"}
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			prefixes = append(prefixes, p[:i])
		}
	}
	if p != "/" {
		prefixes = append(prefixes, p)
	}
	missing := false
	for _, q := range prefixes {
		if missing {
			out = append(out, pathDir{Path: q, Missing: true})
			continue
		}
		fi, err := os.Lstat(q)
		if errors.Is(err, fs.ErrNotExist) {
			missing = true
			out = append(out, pathDir{Path: q, Missing: true})
			continue
		}
		if err != nil {
			return nil, err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil, fmt.Errorf("no owner for %s", q)
		}
		out = append(out, pathDir{Path: q, UID: int(st.Uid), GID: int(st.Gid), Mode: fi.Mode()})
	}
	return out, nil
}

// checkOwnership applies checkChain to the store root as written and, when
// a symbolic link is on the way, to the path it resolves to. complete
// reports that the whole path exists.
func checkOwnership(root string, uid int) (complete bool, err error) {
	chain, err := lstatChain(root)
	if err != nil {
		return false, fmt.Errorf("checking the store %s: %w (hint: --store, DEVBOX_STORE or [store] root must name a directory of yours, or a path where one can be created)", root, err)
	}
	if err := checkChain(chain, uid, privateGroup(uid)); err != nil {
		return false, err
	}
	hasLink := false
	for _, d := range chain {
		hasLink = hasLink || d.Mode&fs.ModeSymlink != 0
	}
	complete = !chain[len(chain)-1].Missing
	if !hasLink {
		return complete, nil
	}
	// Resolve the part that exists; the missing tail is created below it.
	exist, rest := root, ""
	for {
		if _, err := os.Lstat(exist); err == nil || exist == "/" {
			break
		}
		rest = filepath.Join(filepath.Base(exist), rest)
		exist = filepath.Dir(exist)
	}
	real, err := filepath.EvalSymlinks(exist)
	if err != nil {
		return false, fmt.Errorf("checking the store %s: %w (hint: --store, DEVBOX_STORE or [store] root must name a directory of yours, or a path where one can be created)", root, err)
	}
	chain, err = lstatChain(filepath.Join(real, rest))
	if err != nil {
		return false, fmt.Errorf("checking the store %s: %w (hint: --store, DEVBOX_STORE or [store] root must name a directory of yours, or a path where one can be created)", root, err)
	}
	if err := checkChain(chain, uid, privateGroup(uid)); err != nil {
		return false, fmt.Errorf("%w (the store %s leads there)", err, root)
	}
	return complete, nil
}

// privateGroup returns the gid of uid's private group, -1 when it has
// none: the primary group of this process when /etc/group names it as the
// user and lists no other member. (A group only a directory service knows
// is not taken as private.)
func privateGroup(uid int) int {
	if uid != os.Getuid() {
		return -1
	}
	u, err := user.Current()
	if err != nil {
		return -1
	}
	b, err := os.ReadFile("/etc/group")
	if err != nil {
		return -1
	}
	return privateGID(string(b), u.Username, os.Getgid())
}

// privateGID finds gid in the group file text and returns it when that
// group is named name and has no member but name; -1 otherwise.
func privateGID(group, name string, gid int) int {
	for line := range strings.Lines(group) {
		f := strings.Split(strings.TrimRight(line, "\n"), ":")
		if len(f) != 4 || f[2] != strconv.Itoa(gid) {
			continue
		}
		if f[0] != name {
			return -1
		}
		for _, m := range strings.Split(f[3], ",") {
			if m != "" && m != name {
				return -1
			}
		}
		return gid
	}
	return -1
}
