// Package idmap says who the caller is and which subordinate ids it may
// map (/etc/subuid, /etc/subgid, getsubids), and computes the keep-id map
// of a box's user namespace from that. It is plain data and file reading,
// light enough for devbox's front (cmd/devbox) to link; package rootless
// uses it to write the maps.
package idmap

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
	// ViaPath says the ranges depended on looking getsubids up in $PATH
	// (the files had none, or NSS names another source): then they are
	// not only the files' (session.NoteCaller does not record them).
	ViaPath bool `json:"-"`
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
		m.ViaPath = true
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

// KeepIDMaps returns the keep-id map of a box's user namespace in host ids:
// the caller's own id is itself, and every other id from 0 up takes the next
// subordinate id, in the order of the ranges. Each extent lies inside one
// subordinate range, as newuidmap requires of every line but the caller's
// own id (which it allows as a one-id line). With no subordinate ids the
// map is the single line 0 → own.
func KeepIDMaps(own int, subs []Range) []syscall.SysProcIDMap {
	if total(subs) == 0 {
		return []syscall.SysProcIDMap{{ContainerID: 0, HostID: own, Size: 1}}
	}
	var m []syscall.SysProcIDMap
	i := 0
	for _, r := range subs {
		h := r.Start
		for left := r.Length; left > 0; {
			if i == own {
				i++
				continue
			}
			chunk := left
			if i < own && i+chunk > own {
				chunk = own - i
			}
			m = append(m, syscall.SysProcIDMap{ContainerID: i, HostID: h, Size: chunk})
			i, h, left = i+chunk, h+chunk, left-chunk
		}
	}
	m = append(m, syscall.SysProcIDMap{ContainerID: own, HostID: own, Size: 1})
	sort.Slice(m, func(a, b int) bool { return m[a].ContainerID < m[b].ContainerID })
	return m
}

// HostUID returns the host uid that inner uid id is stored as on disk, or -1
// when id is not mapped.
func (m Mapping) HostUID(id int) int { return hostID(id, m.UID, m.SubUIDs) }

// HostGID is HostUID for groups.
func (m Mapping) HostGID(id int) int { return hostID(id, m.GID, m.SubGIDs) }

func hostID(id, own int, subs []Range) int {
	for _, e := range KeepIDMaps(own, subs) {
		if id >= e.ContainerID && id < e.ContainerID+e.Size {
			return e.HostID + id - e.ContainerID
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
