package seccomp

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	mseccomp "github.com/moby/profiles/seccomp"
)

// fromMoby converts a profile in moby's types into this package's.
func fromMoby(m *mseccomp.Seccomp) (profile, error) {
	errno := func(e *uint) int {
		if e == nil {
			return -1
		}
		return int(*e)
	}
	filt := func(f *mseccomp.Filter) filter {
		if f == nil {
			return filter{}
		}
		return filter{caps: f.Caps, arches: f.Arches, minKernel: f.MinKernel != nil}
	}
	if len(m.Architectures) != 0 || len(m.LinuxSeccomp.Syscalls) != 0 || m.ListenerPath != "" || len(m.Flags) != 0 {
		return profile{}, fmt.Errorf("profile uses fields this package does not read")
	}
	p := profile{defaultAction: string(m.DefaultAction), defaultErrno: errno(m.DefaultErrnoRet)}
	for _, a := range m.ArchMap {
		e := archEntry{arch: string(a.Arch)}
		for _, s := range a.SubArches {
			e.subArches = append(e.subArches, string(s))
		}
		p.archMap = append(p.archMap, e)
	}
	for _, s := range m.Syscalls {
		names := s.Names
		if s.Name != "" {
			if len(names) != 0 {
				return profile{}, fmt.Errorf("rule names both %q and %v", s.Name, names)
			}
			names = []string{s.Name}
		}
		r := profileRule{names: names, action: string(s.Action), errno: errno(s.ErrnoRet),
			include: filt(s.Includes), exclude: filt(s.Excludes)}
		for _, a := range s.Args {
			r.args = append(r.args, profileArg{index: a.Index, value: a.Value, valueTwo: a.ValueTwo, op: string(a.Op)})
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// writeProfile writes p as the Go literal of zprofile.go.
func writeProfile(buf *bytes.Buffer, p profile) {
	strs := func(ss []string) string {
		if ss == nil {
			return "nil"
		}
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s)
		}
		return "[]string{" + strings.Join(q, ", ") + "}"
	}
	filt := func(f filter) string {
		return fmt.Sprintf("filter{caps: %s, arches: %s, minKernel: %v}", strs(f.caps), strs(f.arches), f.minKernel)
	}
	fmt.Fprintf(buf, "var defaultProfile = profile{\n\tdefaultAction: %q,\n\tdefaultErrno: %d,\n\tarchMap: []archEntry{\n", p.defaultAction, p.defaultErrno)
	for _, a := range p.archMap {
		fmt.Fprintf(buf, "\t\t{arch: %q, subArches: %s},\n", a.arch, strs(a.subArches))
	}
	buf.WriteString("\t},\n\trules: []profileRule{\n")
	for _, r := range p.rules {
		fmt.Fprintf(buf, "\t\t{\n\t\t\tnames: %s,\n\t\t\taction: %q,\n\t\t\terrno: %d,\n", strs(r.names), r.action, r.errno)
		if r.args != nil {
			buf.WriteString("\t\t\targs: []profileArg{\n")
			for _, a := range r.args {
				fmt.Fprintf(buf, "\t\t\t\t{index: %d, value: %#x, valueTwo: %#x, op: %q},\n", a.index, a.value, a.valueTwo, a.op)
			}
			buf.WriteString("\t\t\t},\n")
		}
		fmt.Fprintf(buf, "\t\t\tinclude: %s,\n\t\t\texclude: %s,\n\t\t},\n", filt(r.include), filt(r.exclude))
	}
	buf.WriteString("\t},\n}\n")
}
