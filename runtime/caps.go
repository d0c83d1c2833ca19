package runtime

import (
	"fmt"
	"github.com/devbox-dev/devbox/runtime/seccomp"
	"slices"
	"strings"
)

// DefaultCaps is the capability bounding set of a box's commands unless
// --cap-add/--cap-drop change it: rootless Podman's default set. It lacks,
// among others, SYS_ADMIN (no mounts: the masks over /proc and /sys stay),
// SYS_PTRACE (the init cannot be traced), NET_RAW (no raw frames past the
// network driver's policy) and MKNOD.
// (By number.)
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP",
}

// capNumber returns the number of capability name ("CAP_CHOWN", "chown",
// "CHOWN" alike).
func capNumber(name string) (int, bool) {
	n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "CAP_")
	i := slices.Index(seccomp.CapNames[:], n)
	return i, i >= 0
}

// CapMask returns the bit mask of caps (bit i: capability i); nil is
// DefaultCaps.
func CapMask(caps []string) (uint64, error) {
	if caps == nil {
		caps = DefaultCaps
	}
	var m uint64
	for _, c := range caps {
		i, ok := capNumber(c)
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", c)
		}
		m |= 1 << uint(i)
	}
	return m, nil
}

// CapSet applies --cap-add and --cap-drop (names with or without CAP_, any
// case, comma-separated or repeated, or ALL) to the default set, as docker
// and podman do: ALL in drop starts from nothing, ALL in add from every
// capability; then the named ones are added, then dropped. It returns the
// bounding set sorted by number, nil when it is the default set.
func CapSet(add, drop []string) ([]string, error) {
	var set [len(seccomp.CapNames)]bool
	for _, c := range DefaultCaps {
		i, _ := capNumber(c)
		set[i] = true
	}
	names := func(list []string) (all bool, idx []int, err error) {
		for _, l := range list {
			for _, n := range strings.Split(l, ",") {
				if strings.EqualFold(strings.TrimSpace(n), "all") {
					all = true
					continue
				}
				i, ok := capNumber(n)
				if !ok {
					return false, nil, fmt.Errorf("unknown capability %q (hint: names as in capabilities(7), e.g. NET_RAW or CAP_NET_RAW, or ALL)", n)
				}
				idx = append(idx, i)
			}
		}
		return all, idx, nil
	}
	addAll, addIdx, err := names(add)
	if err != nil {
		return nil, err
	}
	dropAll, dropIdx, err := names(drop)
	if err != nil {
		return nil, err
	}
	for i := range set {
		switch {
		case dropAll:
			set[i] = false
		case addAll:
			set[i] = true
		}
	}
	for _, i := range addIdx {
		set[i] = true
	}
	for _, i := range dropIdx {
		set[i] = false
	}
	out := []string{}
	for i, on := range set {
		if on {
			out = append(out, "CAP_"+seccomp.CapNames[i])
		}
	}
	if slices.Equal(out, DefaultCaps) {
		return nil, nil
	}
	return out, nil
}

// MayTrace reports whether a command of the box may trace its init
// (CAP_SYS_PTRACE in its bounding set): it then reaches what the init is,
// its program included (/proc/1/exe), past the init's PR_SET_DUMPABLE 0.
func (s Security) MayTrace() bool {
	m, err := CapMask(s.Caps)
	i, _ := capNumber("SYS_PTRACE")
	return err != nil || m&(1<<uint(i)) != 0
}

// ParseSecurity turns --cap-add, --cap-drop and --security-opt values into
// a box's Security; allowSetuid is the kind of box's default (dev boxes
// allow setuid programs, for sudo). The options known are
// seccomp=unconfined (or seccomp=default) and no-new-privileges[=true|false].
func ParseSecurity(capAdd, capDrop, opts []string, allowSetuid bool) (Security, error) {
	s := Security{AllowSetuid: allowSetuid}
	caps, err := CapSet(capAdd, capDrop)
	if err != nil {
		return s, err
	}
	s.Caps = caps
	for _, o := range opts {
		k, v, hasV := strings.Cut(o, "=")
		if !hasV {
			k, v, hasV = strings.Cut(o, ":") // docker's older spelling
		}
		switch {
		case k == "seccomp" && v == "unconfined":
			s.Unconfined = true
		case k == "seccomp" && (v == "default" || v == ""):
			s.Unconfined = false
		case k == "no-new-privileges" && (!hasV || v == "true"):
			s.AllowSetuid = false
		case k == "no-new-privileges" && v == "false":
			s.AllowSetuid = true
		default:
			return s, fmt.Errorf("unknown --security-opt %q (hint: seccomp=unconfined, seccomp=default, no-new-privileges=true or no-new-privileges=false)", o)
		}
	}
	return s, nil
}

// Describe is a one-line account of s for inspect and messages.
func (s Security) Describe() string {
	caps := "default capabilities"
	if s.Caps != nil {
		if len(s.Caps) == 0 {
			caps = "no capabilities"
		} else {
			caps = "capabilities " + strings.Join(s.Caps, ",")
		}
	}
	sc := "seccomp default"
	if s.Unconfined {
		sc = "seccomp unconfined"
	}
	if s.Nested && !s.Unconfined {
		sc += " with user namespaces"
	}
	nnp := "no_new_privs"
	if s.AllowSetuid {
		nnp = "setuid allowed"
	}
	return caps + ", " + sc + ", " + nnp
}
