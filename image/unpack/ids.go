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
	Count  int    // how many ids are mapped
	Next   int    // the first host id above the mapped ones, aligned to 65536
}

func (e *IDRangeError) Error() string {
	sub := "subuid"
	if e.Kind == "gid" {
		sub = "subgid"
	}
	more := e.ID + 1 - e.Count
	if more < 1 {
		more = 1
	}
	more = (more + 65535) / 65536 * 65536
	first := max(e.Next, 100000)
	return fmt.Sprintf("the image has a file owned by %s %d, outside the %ss your user namespace maps (%s) "+
		"(hint: give your user %d more subordinate ids in /etc/%s, a range no other user has, e.g. sudo usermod --add-subuids %d-%d --add-subgids %d-%d $USER; devbox doctor checks the ranges)",
		e.Kind, e.ID, e.Kind, e.Mapped, more, sub, first, first+more-1, first, first+more-1)
}

// newIDRangeError names whichever of uid and gid is not mapped in this
// process's user namespace.
func newIDRangeError(uid, gid int) error {
	kind, id, file := "uid", uid, "/proc/self/uid_map"
	if m, _ := readIDMap(file, uid); m.mapped {
		kind, id, file = "gid", gid, "/proc/self/gid_map"
	}
	m, _ := readIDMap(file, id)
	return &IDRangeError{Kind: kind, ID: id, Mapped: m.desc, Count: m.count, Next: m.next}
}

// idMap describes an id map file as seen for one id.
type idMap struct {
	mapped bool   // the id is mapped
	desc   string // the ranges mapped inside ("0-65536", "0-999, 1001-65536")
	count  int    // ids mapped
	next   int    // the first host id above every mapped one, aligned to 65536
}

func readIDMap(file string, id int) (idMap, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return idMap{desc: "unknown"}, err
	}
	return parseIDMap(string(b), id), nil
}

func parseIDMap(s string, id int) idMap {
	type rng struct{ lo, hi int }
	var rs []rng
	var m idMap
	top := 0
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.Atoi(f[0])
		outside, err2 := strconv.Atoi(f[1])
		n, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil || n <= 0 {
			continue
		}
		if id >= inside && id-inside < n {
			m.mapped = true
		}
		m.count += n
		top = max(top, outside+n)
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
	m.desc = "none"
	if len(parts) > 0 {
		m.desc = strings.Join(parts, ", ")
	}
	m.next = (top + 65535) / 65536 * 65536
	return m
}
