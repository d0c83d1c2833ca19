package runtime

import (
	"fmt"
	"strconv"
	"strings"
)

// addPasswd returns passwd with a's entry: lines naming the same user or
// uid are replaced (an image's "ubuntu" user with the same uid would
// otherwise shadow the caller), everything else is kept as it is.
func addPasswd(passwd []byte, a Account, shell string) []byte {
	entry := fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", a.Name, a.UID, a.GID, sanitize(a.Gecos), a.Home, shell)
	var out []string
	for _, line := range fileLines(passwd) {
		f := strings.Split(line, ":")
		if len(f) >= 3 && (f[0] == a.Name || f[2] == strconv.Itoa(a.UID)) {
			continue
		}
		out = append(out, line)
	}
	out = append(out, entry)
	return []byte(strings.Join(out, "\n") + "\n")
}

// addGroup makes sure the user's primary group exists and, with sudo,
// lists the user in the image's admin groups (sudo, wheel, admin).
func addGroup(group []byte, a Account, sudo bool) []byte {
	var out []string
	haveGID := false
	for _, line := range fileLines(group) {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[2] == strconv.Itoa(a.GID) {
			haveGID = true
		}
		if len(f) == 4 && sudo && (f[0] == "sudo" || f[0] == "wheel" || f[0] == "admin") {
			members := strings.Split(f[3], ",")
			if f[3] == "" {
				members = nil
			}
			found := false
			for _, m := range members {
				found = found || m == a.Name
			}
			if !found {
				f[3] = strings.Join(append(members, a.Name), ",")
				line = strings.Join(f, ":")
			}
		}
		out = append(out, line)
	}
	if !haveGID {
		name := a.Group
		if name == "" {
			name = a.Name
		}
		// A different group may already use the name: keep it, pick ours.
		for _, line := range out {
			if strings.HasPrefix(line, name+":") {
				name = a.Name + "-devbox"
				break
			}
		}
		out = append(out, fmt.Sprintf("%s:x:%d:", name, a.GID))
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// addShadow adds a locked-password entry so tools that read shadow (su,
// passwd, PAM) know the user; sudo is configured without a password.
func addShadow(shadow []byte, a Account) []byte {
	for _, line := range fileLines(shadow) {
		if strings.HasPrefix(line, a.Name+":") {
			return shadow
		}
	}
	out := fileLines(shadow)
	out = append(out, a.Name+":*:19000:0:99999:7:::")
	return []byte(strings.Join(out, "\n") + "\n")
}

func fileLines(b []byte) []string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// sanitize keeps a GECOS field from breaking the passwd format.
func sanitize(s string) string {
	return strings.NewReplacer(":", " ", "\n", " ").Replace(s)
}
