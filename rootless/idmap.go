package rootless

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/rootless-containers/rootlesskit/v3/pkg/parent/dynidtools"
	"github.com/rootless-containers/rootlesskit/v3/pkg/parent/idtools"
)

// Range is a run of subordinate ids on the host.
type Range struct {
	Start, Length int
}

// Mapping describes the caller and the subordinate ids it may use. It is
// computed once per command by Detect and is plain data.
type Mapping struct {
	UID, GID int
	User     string
	SubUIDs  []Range // empty: single-ID mode
	SubGIDs  []Range
	// Warning is set when the mapping is degraded (no subordinate ids); the
	// CLI prints it once.
	Warning string
}

// Single reports whether only the caller's own ids can be mapped.
func (m Mapping) Single() bool { return len(m.SubUIDs) == 0 || len(m.SubGIDs) == 0 }

// Detect looks up the caller's subordinate id ranges: getsubids(1) first (it
// also covers SSSD/LDAP), /etc/subuid and /etc/subgid otherwise.
func Detect() (Mapping, error) {
	m := Mapping{UID: os.Getuid(), GID: os.Getgid()}
	u, err := user.LookupId(strconv.Itoa(m.UID))
	if err == nil {
		m.User = u.Username
	} else if name := os.Getenv("USER"); name != "" {
		m.User = name
	}
	if m.UID == 0 {
		// root needs no helper binaries: single-ID mode maps root to root.
		return m, nil
	}
	// /etc/subuid and /etc/subgid first: reading two small files costs
	// microseconds, running getsubids(1) twice costs milliseconds on every
	// command. getsubids is asked when nsswitch names another source (SSSD,
	// LDAP) or the files have nothing for us.
	var us, gs []idtools.SubIDRange
	if os.Getenv("DEVBOX_SUBIDS") == "none" {
		// Behave as for a user without ranges (documented in
		// docs/architecture.md; the tests use it to run the single-ID path).
		m.Warning = singleWarning(m.User)
		return m, nil
	}
	dynamic := subidFromNSS()
	if !dynamic {
		us, gs, err = idtools.GetSubIDRanges(m.UID, m.User)
	}
	if len(us) == 0 || len(gs) == 0 {
		if _, lerr := exec.LookPath("getsubids"); lerr == nil {
			us, gs, err = dynidtools.GetSubIDRanges(m.UID, m.User)
		}
	}
	if dynamic && (len(us) == 0 || len(gs) == 0) {
		us, gs, err = idtools.GetSubIDRanges(m.UID, m.User)
	}
	if err != nil || len(us) == 0 || len(gs) == 0 {
		m.Warning = singleWarning(m.User)
		return m, nil
	}
	m.SubUIDs = cleanRanges(us, m.UID)
	m.SubGIDs = cleanRanges(gs, m.GID)
	if len(m.SubUIDs) == 0 || len(m.SubGIDs) == 0 {
		m.SubUIDs, m.SubGIDs = nil, nil
	}
	return m, nil
}

// cleanRanges sorts ranges, drops empty ones and removes own (newuidmap
// refuses a map naming the same host id twice).
func cleanRanges(in []idtools.SubIDRange, own int) []Range {
	var out []Range
	for _, r := range in {
		if r.Length <= 0 || r.Start < 0 {
			continue
		}
		if own >= r.Start && own < r.Start+r.Length {
			if own > r.Start {
				out = append(out, Range{r.Start, own - r.Start})
			}
			if end := r.Start + r.Length; own+1 < end {
				out = append(out, Range{own + 1, end - own - 1})
			}
			continue
		}
		out = append(out, Range{r.Start, r.Length})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

func total(rs []Range) int {
	n := 0
	for _, r := range rs {
		n += r.Length
	}
	return n
}

// outerArgs returns the newuidmap (or newgidmap) arguments after the pid for
// the outer namespace: 0 → own id, 1.. → the subordinate ranges in order.
func outerArgs(own int, subs []Range) []string {
	args := []string{"0", strconv.Itoa(own), "1"}
	next := 1
	for _, r := range subs {
		args = append(args, strconv.Itoa(next), strconv.Itoa(r.Start), strconv.Itoa(r.Length))
		next += r.Length
	}
	return args
}

// innerMaps returns the keep-id map of the inner namespace, expressed in
// outer ids (outer 0 is the caller, outer 1.. the subordinate ranges in
// order): inner own → outer 0, every other inner id from 0 up → outer 1, 2, ….
// The kernel wants each extent inside one extent of the parent's map, so
// extents are split where the subordinate ranges end.
func innerMaps(own int, subs []Range) []syscall.SysProcIDMap {
	if total(subs) == 0 {
		return []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	}
	var m []syscall.SysProcIDMap
	i, o := 0, 1
	for _, r := range subs {
		for left := r.Length; left > 0; {
			if i == own {
				i++
				continue
			}
			chunk := left
			if i < own && i+chunk > own {
				chunk = own - i
			}
			m = append(m, syscall.SysProcIDMap{ContainerID: i, HostID: o, Size: chunk})
			i, o, left = i+chunk, o+chunk, left-chunk
		}
	}
	m = append(m, syscall.SysProcIDMap{ContainerID: own, HostID: 0, Size: 1})
	sort.Slice(m, func(a, b int) bool { return m[a].ContainerID < m[b].ContainerID })
	return m
}

// HostUID returns the host uid that inner uid id is stored as on disk, or -1
// when id is not mapped. It is the keep-id map composed with the outer map.
func (m Mapping) HostUID(id int) int { return hostID(id, m.UID, m.SubUIDs) }

// HostGID is HostUID for groups.
func (m Mapping) HostGID(id int) int { return hostID(id, m.GID, m.SubGIDs) }

func hostID(id, own int, subs []Range) int {
	if len(subs) == 0 {
		if id == 0 {
			return own
		}
		return -1
	}
	for _, e := range innerMaps(own, subs) {
		if id < e.ContainerID || id >= e.ContainerID+e.Size {
			continue
		}
		outer := e.HostID + id - e.ContainerID
		if outer == 0 {
			return own
		}
		outer--
		for _, r := range subs {
			if outer < r.Length {
				return r.Start + outer
			}
			outer -= r.Length
		}
	}
	return -1
}

// BoxUser returns the uid and gid the user's processes run as inside: the
// caller's own ids in keep-id mode, root in single-ID mode.
func (m Mapping) BoxUser() (uid, gid int) {
	if m.Single() {
		return 0, 0
	}
	return m.UID, m.GID
}

// subidFromNSS reports whether /etc/nsswitch.conf sends subid lookups to a
// source other than the files.
func subidFromNSS() bool {
	b, err := os.ReadFile("/etc/nsswitch.conf")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "subid:" {
			return f[1] != "files"
		}
	}
	return false
}

func singleWarning(user string) string {
	return fmt.Sprintf("no subordinate id range for user %q in /etc/subuid and /etc/subgid: "+
		"only your own uid is mapped, the box runs as root (your uid) and image files of other owners "+
		"are owned by you (hint: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s; devbox doctor picks a free range)",
		user, user)
}
