package commit

import (
	"slices"
	"strconv"
	"strings"
)

// Account is the user devbox added to the box's /etc at every start
// (runtime.Account, as recorded in the box's spec.json).
type Account struct {
	Name string `json:"name"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

// undoFunc takes devbox's edit out of the upper layer's version of a file,
// given the image's version (nil when the image has none). It returns the
// content to commit, and false when nothing is left to commit (the file is
// the image's again).
type undoFunc func(upper, lower []byte, a Account) ([]byte, bool)

// accountFiles are the files of the box's /etc that devbox rewrites, with
// how to undo the rewrite.
var accountFiles = map[string]undoFunc{
	"etc/passwd": undoPasswd,
	"etc/group":  undoGroup,
	"etc/shadow": undoShadow,
}

func lines(b []byte) []string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func join(l []string) []byte {
	if len(l) == 0 {
		return nil
	}
	return []byte(strings.Join(l, "\n") + "\n")
}

// finish compares the undone lines with the image's.
func finish(out []string, lower []byte) ([]byte, bool) {
	if slices.Equal(out, lines(lower)) {
		return nil, false
	}
	return join(out), true
}

// undoPasswd removes the user's entry and puts back the image's entries
// devbox replaced (same name or uid).
func undoPasswd(upper, lower []byte, a Account) ([]byte, bool) {
	uid := strconv.Itoa(a.UID)
	clash := func(f []string) bool { return len(f) >= 3 && (f[0] == a.Name || f[2] == uid) }
	kept := map[string]bool{}
	var out []string
	for _, l := range lines(upper) {
		if f := strings.Split(l, ":"); len(f) >= 1 && f[0] == a.Name {
			continue
		}
		kept[l] = true
		out = append(out, l)
	}
	// The image's entries devbox replaced: when the rest is the image's,
	// the file is; otherwise they go back at the end.
	var rest, restored []string
	for _, l := range lines(lower) {
		if clash(strings.Split(l, ":")) && !kept[l] {
			restored = append(restored, l)
			continue
		}
		rest = append(rest, l)
	}
	if slices.Equal(out, rest) {
		return nil, false
	}
	return finish(append(out, restored...), lower)
}

// undoGroup takes the user out of the admin groups devbox listed it in and
// removes the primary group devbox appended.
func undoGroup(upper, lower []byte, a Account) ([]byte, bool) {
	gid := strconv.Itoa(a.GID)
	lowMembers := map[string]string{}
	lowHasGID := false
	for _, l := range lines(lower) {
		f := strings.Split(l, ":")
		if len(f) == 4 {
			lowMembers[f[0]] = f[3]
		}
		if len(f) >= 3 && f[2] == gid {
			lowHasGID = true
		}
	}
	var out []string
	for _, l := range lines(upper) {
		f := strings.Split(l, ":")
		if !lowHasGID && len(f) == 4 && f[2] == gid && f[3] == "" {
			continue // the group devbox appended
		}
		if len(f) == 4 && (f[0] == "sudo" || f[0] == "wheel" || f[0] == "admin") && !hasMember(lowMembers[f[0]], a.Name) {
			var ms []string
			for _, m := range strings.Split(f[3], ",") {
				if m != a.Name && m != "" {
					ms = append(ms, m)
				}
			}
			f[3] = strings.Join(ms, ",")
			l = strings.Join(f, ":")
		}
		out = append(out, l)
	}
	return finish(out, lower)
}

func hasMember(list, name string) bool {
	for _, m := range strings.Split(list, ",") {
		if m == name {
			return true
		}
	}
	return false
}

// undoShadow removes the locked entry devbox added.
func undoShadow(upper, lower []byte, a Account) ([]byte, bool) {
	for _, l := range lines(lower) {
		if strings.HasPrefix(l, a.Name+":") {
			return finish(lines(upper), lower)
		}
	}
	var out []string
	for _, l := range lines(upper) {
		if l == a.Name+":*:19000:0:99999:7:::" {
			continue
		}
		out = append(out, l)
	}
	return finish(out, lower)
}
