package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/devbox-dev/devbox/rootless"
)

// IDRange is one line of /proc/PID/uid_map or gid_map.
type IDRange struct {
	Inside, Outside, Count uint32
}

// IDMap is a user namespace's uid or gid map.
type IDMap []IDRange

// Contains reports whether id is mapped.
func (m IDMap) Contains(id uint32) bool {
	for _, r := range m {
		if id >= r.Inside && uint64(id) < uint64(r.Inside)+uint64(r.Count) {
			return true
		}
	}
	return false
}

// Mapped returns the ids of ids that m maps, in order, reusing ids' array.
func (m IDMap) Mapped(ids []uint32) []uint32 {
	out := ids[:0]
	for _, id := range ids {
		if m.Contains(id) {
			out = append(out, id)
		}
	}
	return out
}

// IDMaps describes the box's user namespace.
type IDMaps struct {
	UIDs, GIDs IDMap
	// Setgroups is false when /proc/self/setgroups says "deny" (a
	// single-id mapping): the command keeps the init's (empty) groups.
	Setgroups bool
}

// ParseIDMap parses the text of /proc/PID/uid_map.
func ParseIDMap(b []byte) (IDMap, error) {
	var m IDMap
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed id map line %q", strings.TrimSpace(line))
		}
		var v [3]uint32
		for i, s := range f {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("malformed id map line %q", strings.TrimSpace(line))
			}
			v[i] = uint32(n)
		}
		m = append(m, IDRange{v[0], v[1], v[2]})
	}
	return m, nil
}

// User is the resolved identity of the box's command.
type User struct {
	Name   string // "" when the uid has no passwd entry
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, the primary one first
	Home   string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser resolves spec ("", "name", "uid", "uid:gid", "name:group",
// …) against the box's /etc/passwd and /etc/group contents, as docker and
// podman do: "" is root (0:0); a numeric uid need not be in passwd (its gid
// is then 0 and its home "/"); a name must be. The supplementary groups are
// the groups of /etc/group that list the user.
func ResolveUser(spec string, passwd, group []byte) (User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if hasGroup && groupPart == "" {
		return User{}, fmt.Errorf("invalid user %q: empty group", spec)
	}
	users := parsePasswd(passwd)
	u := User{Home: "/"}
	switch {
	case userPart == "":
		u.UID = 0
		if e, ok := findUID(users, 0); ok {
			u.Name, u.GID, u.Home = e.name, e.gid, e.home
		}
	case isNumeric(userPart):
		uid, err := parseID(userPart)
		if err != nil {
			return User{}, fmt.Errorf("invalid user %q: %w", spec, err)
		}
		u.UID = uid
		if e, ok := findUID(users, uid); ok {
			u.Name, u.GID, u.Home = e.name, e.gid, e.home
		}
	default:
		e, ok := findName(users, userPart)
		if !ok {
			return User{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
		u.Name, u.UID, u.GID, u.Home = e.name, e.uid, e.gid, e.home
	}
	if u.Home == "" {
		u.Home = "/"
	}
	groups := parseGroup(group)
	if hasGroup {
		if isNumeric(groupPart) {
			gid, err := parseID(groupPart)
			if err != nil {
				return User{}, fmt.Errorf("invalid group %q: %w", groupPart, err)
			}
			u.GID = gid
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return User{}, fmt.Errorf("unable to find group %s: no matching entries in group file", groupPart)
			}
		}
	}
	u.Groups = []uint32{u.GID}
	if u.Name != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == u.Name && !containsID(u.Groups, g.gid) {
					u.Groups = append(u.Groups, g.gid)
				}
			}
		}
	}
	return u, nil
}

func containsID(ids []uint32, id uint32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseID parses a uid or gid; 4294967295 is (uid_t)-1, never an id.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, fmt.Errorf("id %s out of range", s)
	}
	return uint32(n), nil
}

func findUID(users []passwdEntry, uid uint32) (passwdEntry, bool) {
	for _, e := range users {
		if e.uid == uid {
			return e, true
		}
	}
	return passwdEntry{}, false
}

func findName(users []passwdEntry, name string) (passwdEntry, bool) {
	for _, e := range users {
		if e.name == name {
			return e, true
		}
	}
	return passwdEntry{}, false
}

// parsePasswd reads name:password:uid:gid:gecos:home:shell lines, skipping
// comments, NIS markers and malformed lines.
func parsePasswd(b []byte) []passwdEntry {
	var out []passwdEntry
	eachLine(b, func(f []string) {
		if len(f) < 6 {
			return
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	})
	return out
}

// parseGroup reads name:password:gid:member,member lines.
func parseGroup(b []byte) []groupEntry {
	var out []groupEntry
	eachLine(b, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := parseID(f[2])
		if err != nil {
			return
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.members = append(g.members, m)
				}
			}
		}
		out = append(out, g)
	})
	return out
}

func eachLine(b []byte, fn func([]string)) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.Split(line, ":")
		if f[0] == "" {
			continue
		}
		fn(f)
	}
}

// Environ returns env for the command: devbox's private keys removed and
// HOME set from u when env has none.
func Environ(env []string, u User) []string {
	out := rootless.ScrubEnv(env)
	if _, ok := lookupEnv(out, "HOME"); !ok {
		out = append(out, "HOME="+u.Home)
	}
	return out
}

// lookupEnv returns the value of key in env (the last one wins, as in
// getenv of a process started with env).
func lookupEnv(env []string, key string) (string, bool) {
	v, found := "", false
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v, found = val, true
		}
	}
	return v, found
}
