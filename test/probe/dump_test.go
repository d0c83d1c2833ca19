package main

import (
	"bytes"
	"strings"
	"testing"
)

// The mount table of a cold box, and the same tree as a warm box has it:
// /proc, /sys and /dev (with a mask) made first, the root later; other
// mount ids, device numbers and peer groups.
const (
	coldTable = `21 20 0:40 / / rw,relatime - overlay overlay rw,lowerdir=/s/layers/0123456789abcdef
22 21 0:41 / /proc rw,nosuid - proc proc rw
23 21 0:42 / /sys ro,nosuid - sysfs sysfs ro
24 21 0:43 / /dev rw,nosuid shared:5 - tmpfs tmpfs rw,mode=755
25 22 0:44 / /proc/acpi ro - tmpfs tmpfs ro
26 24 0:43 /null /dev/null rw master:5 - tmpfs tmpfs rw,mode=755`
	warmTable = `31 90 0:51 / /proc rw,nosuid - proc proc rw
32 90 0:52 / /sys ro,nosuid - sysfs sysfs ro
33 90 0:53 / /dev rw,nosuid shared:9 - tmpfs tmpfs rw,mode=755
34 31 0:54 / /proc/acpi ro - tmpfs tmpfs ro
35 33 0:53 /null /dev/null rw master:9 - tmpfs tmpfs rw,mode=755
40 20 0:60 / / rw,relatime - overlay overlay rw,lowerdir=/s/layers/fedcba9876543210`
)

func dumpOf(f func(d *dumper)) string {
	var b bytes.Buffer
	f(&dumper{names: map[string]map[string]string{}, w: &b})
	return b.String()
}

// section returns the lines of dump s that start with prefix.
func section(s, prefix string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// TestMountinfo: the tree view does not depend on the order mounts were
// made in, and the ordered view does; both see a change of the tree.
func TestMountinfo(t *testing.T) {
	// The warm table's parents are mount 31's and 33's, which the moves
	// made children of the root (40).
	warm := strings.NewReplacer("31 90 ", "31 40 ", "32 90 ", "32 40 ", "33 90 ", "33 40 ").Replace(warmTable)
	cold := dumpOf(func(d *dumper) { d.mountinfo([]byte(coldTable)) })
	got := dumpOf(func(d *dumper) { d.mountinfo([]byte(warm)) })
	if a, b := section(cold, "mounttree: "), section(got, "mounttree: "); a != b {
		t.Errorf("the same tree, made in another order:\n%s\n%s", a, b)
	}
	if a, b := section(cold, "mount: "), section(got, "mount: "); a == b {
		t.Errorf("the ordered view does not show the order:\n%s", a)
	}
	for _, l := range []string{
		"mounttree: outside/0 parent outside dev tdev1 root / at / rw,relatime [] overlay overlay rw,lowerdir=/s/layers/ID\n",
		"mounttree: outside/0/0/0 parent outside/0/0 dev tdev2 root /null at /dev/null rw [master:tpeer1] tmpfs tmpfs rw,mode=755\n",
		"mount: m2 parent m1 dev anon2 root / at /proc rw,nosuid [] proc proc rw\n",
	} {
		if !strings.Contains(cold, l) {
			t.Errorf("no line %q in\n%s", l, cold)
		}
	}
	// Another tree: /dev/null on /proc's mask instead of /dev.
	other := strings.Replace(coldTable, "26 24 ", "26 25 ", 1)
	if a, b := section(cold, "mounttree: "), section(dumpOf(func(d *dumper) { d.mountinfo([]byte(other)) }), "mounttree: "); a == b {
		t.Errorf("another tree, the same view:\n%s", a)
	}
}

func TestKindAndPids(t *testing.T) {
	d := &dumper{names: map[string]map[string]string{}}
	for _, c := range []struct{ in, want string }{
		{"pipe:[123]", "pipe1"},
		{"socket:[9]", "socket1"},
		{"pipe:[77]", "pipe2"},
		{"pipe:[123]", "pipe1"},
		{"/dev/null", "/dev/null"},
		{"anon_inode:[eventpoll]", "anon_inode:[eventpoll]"},
	} {
		if got := d.kind(c.in); got != c.want {
			t.Errorf("kind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{{"1", "1"}, {"0", "0"}, {"57", "pid1"}, {"58", "pid2"}, {"57", "pid1"}} {
		if got := d.pid(c.in); got != c.want {
			t.Errorf("pid(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
