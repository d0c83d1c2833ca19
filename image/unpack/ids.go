package unpack

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// IDRangeError is a file owned by a uid or gid that the user namespace of
// the unpack does not map: the user's subordinate id range is too small for
// the image. The layer is refused rather than given another owner (the
// policy of docs/security.md, "Hostile images").
type IDRangeError struct {
	Kind   string // "uid" or "gid"
	ID     int
	Mapped string // the ids mapped, e.g. "0-65536"
}

func (e *IDRangeError) Error() string {
	sub := "subuid"
	if e.Kind == "gid" {
		sub = "subgid"
	}
	return fmt.Sprintf("the image has a file owned by %s %d, outside the %ss your user namespace maps (%s) "+
		"(hint: give your user at least %d subordinate ids in /etc/%s, e.g. sudo usermod --add-subuids 100000-%d --add-subgids 100000-%d $USER; devbox doctor checks the ranges)",
		e.Kind, e.ID, e.Kind, e.Mapped, e.ID+1, sub, 100000+e.ID, 100000+e.ID)
}

// newIDRangeError names whichever of uid and gid is not mapped in this
// process's user namespace.
func newIDRangeError(uid, gid int) error {
	kind, id, file := "uid", uid, "/proc/self/uid_map"
	if mapped, _ := idMapped(file, uid); mapped {
		kind, id, file = "gid", gid, "/proc/self/gid_map"
	}
	_, desc := idMapped(file, id)
	return &IDRangeError{Kind: kind, ID: id, Mapped: desc}
}

// idMapped reports whether id is mapped in the id map file, and describes
// the mapped ranges ("0-65536", "0-999, 1001-65536").
func idMapped(file string, id int) (bool, string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, "unknown"
	}
	return parseIDMap(string(b), id)
}

func parseIDMap(s string, id int) (bool, string) {
	type rng struct{ lo, hi int }
	var rs []rng
	mapped := false
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.Atoi(f[0])
		n, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || n <= 0 {
			continue
		}
		if id >= inside && id-inside < n {
			mapped = true
		}
		if k := len(rs); k > 0 && rs[k-1].hi+1 == inside {
			rs[k-1].hi = inside + n - 1
		} else {
			rs = append(rs, rng{inside, inside + n - 1})
		}
	}
	var parts []string
	for _, r := range rs {
		if r.lo == r.hi {
			parts = append(parts, strconv.Itoa(r.lo))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.lo, r.hi))
		}
	}
	if len(parts) == 0 {
		return mapped, "none"
	}
	return mapped, strings.Join(parts, ", ")
}
