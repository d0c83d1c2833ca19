package runtime

import (
	"reflect"
	"testing"
)

func TestReadOnlyTargets(t *testing.T) {
	cases := []struct {
		name   string
		mounts []Mount
		want   []string
	}{
		{"none", []Mount{{Source: "/h", Target: "/home/me"}}, nil},
		{"read-only binds, outermost first", []Mount{
			{Source: "/srv", Target: "/data/", ReadOnly: true},
			{Source: "/z", Target: "/etc/localtime", ReadOnly: true},
			{Source: "/srv/x", Target: "/data/x", ReadOnly: true}, // carried by /data's clone
			{Source: "/d", Target: "/database", ReadOnly: true},   // not below /data
			{Target: "/run/user/1000", Tmpfs: true, ReadOnly: true},
			{Source: "/w", Target: "/work"},
		}, []string{"/data", "/database", "/etc/localtime"}},
		{"relative target ignored", []Mount{{Source: "/a", Target: "rel", ReadOnly: true}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := readOnlyTargets(&Spec{Mounts: c.mounts}); !reflect.DeepEqual(got, c.want) {
				t.Errorf("readOnlyTargets = %q, want %q", got, c.want)
			}
		})
	}
}

func TestOneToOne(t *testing.T) {
	got := oneToOne(IDMap{{Inside: 0, Outside: 100000, Count: 1000}, {Inside: 1000, Outside: 1000, Count: 1}})
	if len(got) != 2 || got[0].ContainerID != 0 || got[0].HostID != 0 || got[0].Size != 1000 || got[1].ContainerID != 1000 || got[1].HostID != 1000 {
		t.Errorf("oneToOne = %+v", got)
	}
}
