package idmap

import (
	"reflect"
	"syscall"
	"testing"

	"github.com/rootless-containers/rootlesskit/v3/pkg/parent/idtools"
)

func TestKeepIDMaps(t *testing.T) {
	cases := []struct {
		name string
		own  int
		subs []Range
		want []syscall.SysProcIDMap
	}{
		{"single", 1000, nil, []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 1}}},
		{"typical", 1000, []Range{{100000, 65536}}, []syscall.SysProcIDMap{
			{ContainerID: 0, HostID: 100000, Size: 1000},
			{ContainerID: 1000, HostID: 1000, Size: 1},
			{ContainerID: 1001, HostID: 101000, Size: 64536},
		}},
		{"own above range", 200000, []Range{{100000, 65536}}, []syscall.SysProcIDMap{
			{ContainerID: 0, HostID: 100000, Size: 65536},
			{ContainerID: 200000, HostID: 200000, Size: 1},
		}},
		{"own at end", 65536, []Range{{100000, 65536}}, []syscall.SysProcIDMap{
			{ContainerID: 0, HostID: 100000, Size: 65536},
			{ContainerID: 65536, HostID: 65536, Size: 1},
		}},
		{"two ranges split at the boundary", 1001, []Range{{100000, 65536}, {300000, 65536}}, []syscall.SysProcIDMap{
			{ContainerID: 0, HostID: 100000, Size: 1001},
			{ContainerID: 1001, HostID: 1001, Size: 1},
			{ContainerID: 1002, HostID: 101001, Size: 64535},
			{ContainerID: 65537, HostID: 300000, Size: 65536},
		}},
		{"own inside the range (cleanRanges cut it out)", 100005, []Range{{100000, 5}, {100006, 10}}, []syscall.SysProcIDMap{
			{ContainerID: 0, HostID: 100000, Size: 5},
			{ContainerID: 5, HostID: 100006, Size: 10},
			{ContainerID: 100005, HostID: 100005, Size: 1},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := KeepIDMaps(c.own, c.subs)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("KeepIDMaps(%d,%v) = %+v, want %+v", c.own, c.subs, got, c.want)
			}
			// Every host id is used at most once, and each extent but the
			// caller's own id lies inside one subordinate range.
			seen := map[int]bool{}
			for _, e := range got {
				for i := 0; i < e.Size; i++ {
					if seen[e.HostID+i] {
						t.Fatalf("host id %d mapped twice", e.HostID+i)
					}
					seen[e.HostID+i] = true
				}
				if e.HostID == c.own && e.Size == 1 {
					continue
				}
				inside := false
				for _, r := range c.subs {
					inside = inside || (e.HostID >= r.Start && e.HostID+e.Size <= r.Start+r.Length)
				}
				if !inside {
					t.Errorf("extent %+v crosses a subordinate range", e)
				}
			}
		})
	}
}

func TestHostID(t *testing.T) {
	m := Mapping{UID: 1000, GID: 1000, SubUIDs: []Range{{100000, 65536}}, SubGIDs: []Range{{100000, 65536}}}
	cases := []struct{ in, want int }{
		{0, 100000},    // root in the box is the first subuid
		{33, 100033},   // www-data
		{999, 100999},  // just below the user
		{1000, 1000},   // keep-id: the user is the user
		{1001, 101000}, // just above
		{65536, 165535},
		{65537, -1},
	}
	for _, c := range cases {
		if got := m.HostUID(c.in); got != c.want {
			t.Errorf("HostUID(%d) = %d, want %d", c.in, got, c.want)
		}
	}
	split := Mapping{UID: 1000, SubUIDs: []Range{{100000, 10}, {200000, 65526}}}
	if got := split.HostUID(12); got != 200002 { // inner 12 → second range, offset 2
		t.Errorf("split HostUID(12) = %d", got)
	}
	single := Mapping{UID: 1000}
	if single.HostUID(0) != 1000 || single.HostUID(1) != -1 {
		t.Errorf("single mapping wrong")
	}
}

func TestCleanRanges(t *testing.T) {
	got := cleanRanges([]idtools.SubIDRange{{Start: 300000, Length: 5}, {Start: 1000, Length: 0}, {Start: 998, Length: 5}}, 1000)
	want := []Range{{998, 2}, {1001, 2}, {300000, 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cleanRanges = %+v, want %+v", got, want)
	}
}
