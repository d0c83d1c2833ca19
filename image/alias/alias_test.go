package alias

import "testing"

func TestLookup(t *testing.T) {
	tab := New(map[string]string{"debian": "127.0.0.1:5000/library/debian:13", "Mine": "example.com/x:1"})
	cases := []struct {
		name, want, source string
		ok                 bool
	}{
		{"centos", "quay.io/centos/centos:stream10", "builtin", true},
		{"CentOS", "quay.io/centos/centos:stream10", "builtin", true},
		{"rocky", "quay.io/rockylinux/rockylinux:10", "builtin", true},
		{"debian", "127.0.0.1:5000/library/debian:13", "config", true},
		{"mine", "example.com/x:1", "config", true},
		{"nosuch", "", "", false},
	}
	for _, c := range cases {
		a, ok := tab.Lookup(c.name)
		if ok != c.ok || a.Ref != c.want || a.Source != c.source {
			t.Errorf("Lookup(%q) = %+v, %v; want %q from %q, %v", c.name, a, ok, c.want, c.source, c.ok)
		}
	}
}

func TestRequiredAliases(t *testing.T) {
	tab := New(nil)
	for _, n := range []string{"centos", "fedora", "ubuntu", "debian", "archlinux", "arch", "alpine", "opensuse",
		"rockylinux", "rocky", "almalinux", "alma", "amazonlinux", "oraclelinux"} {
		a, ok := tab.Lookup(n)
		if !ok {
			t.Errorf("alias %q missing", n)
			continue
		}
		if a.Ref == "" || a.Ref[len(a.Ref)-1] == ':' {
			t.Errorf("alias %q has a bad reference %q", n, a.Ref)
		}
	}
	if a, _ := tab.Lookup("centos"); a.Ref[:8] != "quay.io/" {
		t.Errorf("centos must point at CentOS Stream on quay.io, got %q", a.Ref)
	}
}

func TestClosest(t *testing.T) {
	tab := New(nil)
	cases := map[string]string{"fedroa": "fedora", "ubuntoo": "ubuntu", "centso": "centos", "zzzzzzzz": ""}
	for in, want := range cases {
		if got := tab.Closest(in); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
