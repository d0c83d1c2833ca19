package runtime

import (
	"github.com/devbox-dev/devbox/runtime/seccomp"
	"reflect"
	"slices"
	"testing"
)

func TestCapSet(t *testing.T) {
	for _, tc := range []struct {
		name      string
		add, drop []string
		want      []string
		err       bool
	}{
		{name: "default", want: nil},
		{name: "add raw", add: []string{"NET_RAW"}, want: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_SETFCAP"}},
		{name: "drop all add one", add: []string{"cap_net_bind_service"}, drop: []string{"ALL"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "drop all", drop: []string{"all"}, want: []string{}},
		{name: "comma list", drop: []string{"CHOWN,KILL,SETPCAP,FSETID"}, add: []string{"KILL"}, want: []string{"CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP"}},
		{name: "add all drop admin", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, want: func() []string {
			var w []string
			for _, n := range seccomp.CapNames {
				if n != "SYS_ADMIN" {
					w = append(w, "CAP_"+n)
				}
			}
			return w
		}()},
		{name: "unknown", add: []string{"SYS_FOO"}, err: true},
		{name: "add and drop same", add: []string{"NET_RAW"}, drop: []string{"NET_RAW"}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CapSet(tc.add, tc.drop)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCapMask(t *testing.T) {
	m, err := CapMask(nil)
	if err != nil || m != 0x800405fb { // what rootless podman shows as CapBnd
		t.Fatalf("default mask %#x, %v; want 0x800405fb", m, err)
	}
	if _, err := CapMask([]string{"CAP_NOPE"}); err == nil {
		t.Fatal("unknown capability accepted")
	}
	if len(seccomp.CapNames) != 41 {
		t.Fatalf("%d capability names, the kernel headers know 41 (CAP_LAST_CAP 40)", len(seccomp.CapNames))
	}
}

func TestParseSecurity(t *testing.T) {
	for _, tc := range []struct {
		opts        []string
		allowSetuid bool
		want        Security
		err         bool
	}{
		{want: Security{}},
		{allowSetuid: true, want: Security{AllowSetuid: true}},
		{opts: []string{"no-new-privileges"}, allowSetuid: true, want: Security{}},
		{opts: []string{"no-new-privileges=false"}, want: Security{AllowSetuid: true}},
		{opts: []string{"seccomp=unconfined"}, want: Security{Unconfined: true}},
		{opts: []string{"seccomp:unconfined", "seccomp=default"}, want: Security{}},
		{opts: []string{"apparmor=x"}, err: true},
	} {
		got, err := ParseSecurity(nil, nil, tc.opts, tc.allowSetuid)
		if (err != nil) != tc.err || (err == nil && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ParseSecurity(%q, %v) = %+v, %v; want %+v (error %v)", tc.opts, tc.allowSetuid, got, err, tc.want, tc.err)
		}
	}
}

// MayTrace holds for a bounding set with CAP_SYS_PTRACE (added alone or
// with ALL), not for the default set or one without it
// (TestEscapeInitExeOverwrite).
func TestMayTrace(t *testing.T) {
	for _, tc := range []struct {
		add, drop []string
		want      bool
	}{
		{nil, nil, false},
		{[]string{"NET_RAW"}, nil, false},
		{[]string{"SYS_PTRACE"}, nil, true},
		{[]string{"cap_sys_ptrace"}, nil, true},
		{[]string{"ALL"}, nil, true},
		{[]string{"ALL"}, []string{"SYS_PTRACE"}, false},
		{nil, []string{"ALL"}, false},
	} {
		s, err := ParseSecurity(tc.add, tc.drop, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.MayTrace(); got != tc.want {
			t.Errorf("add %v drop %v: MayTrace %v, want %v", tc.add, tc.drop, got, tc.want)
		}
	}
}
