// Package alias maps distro short names such as "centos" or "fedora" to fully
// qualified image references with a pinned major version. It is pure: the
// built-in table plus the user's overrides, no I/O.
package alias

import (
	"sort"
	"strings"
)

// Alias is one short name.
type Alias struct {
	Name        string `json:"name"`
	Ref         string `json:"ref"`
	Description string `json:"description,omitempty"`
	Source      string `json:"source"` // "builtin" or "config"
}

// builtin is the maintained table. Each entry names an image that its
// distribution still publishes, pinned to a major version so a box does not
// change distro release under the user. CentOS points at CentOS Stream on
// quay.io: Docker Hub's library/centos has not been updated since CentOS 8
// reached its end of life.
var builtin = []Alias{
	{Name: "centos", Ref: "quay.io/centos/centos:stream10", Description: "CentOS Stream 10"},
	{Name: "fedora", Ref: "registry.fedoraproject.org/fedora:43", Description: "Fedora 43"},
	{Name: "ubuntu", Ref: "docker.io/library/ubuntu:24.04", Description: "Ubuntu 24.04 LTS"},
	{Name: "debian", Ref: "docker.io/library/debian:13", Description: "Debian 13 (trixie)"},
	{Name: "archlinux", Ref: "docker.io/library/archlinux:latest", Description: "Arch Linux (rolling)"},
	{Name: "arch", Ref: "docker.io/library/archlinux:latest", Description: "Arch Linux (rolling)"},
	{Name: "alpine", Ref: "docker.io/library/alpine:3.22", Description: "Alpine Linux 3.22"},
	{Name: "opensuse", Ref: "registry.opensuse.org/opensuse/leap:16.0", Description: "openSUSE Leap 16.0"},
	{Name: "tumbleweed", Ref: "registry.opensuse.org/opensuse/tumbleweed:latest", Description: "openSUSE Tumbleweed (rolling)"},
	{Name: "rockylinux", Ref: "quay.io/rockylinux/rockylinux:10", Description: "Rocky Linux 10"},
	{Name: "rocky", Ref: "quay.io/rockylinux/rockylinux:10", Description: "Rocky Linux 10"},
	{Name: "almalinux", Ref: "quay.io/almalinuxorg/almalinux:10", Description: "AlmaLinux 10"},
	{Name: "alma", Ref: "quay.io/almalinuxorg/almalinux:10", Description: "AlmaLinux 10"},
	{Name: "amazonlinux", Ref: "public.ecr.aws/amazonlinux/amazonlinux:2023", Description: "Amazon Linux 2023"},
	{Name: "oraclelinux", Ref: "container-registry.oracle.com/os/oraclelinux:10", Description: "Oracle Linux 10"},
	{Name: "busybox", Ref: "docker.io/library/busybox:1", Description: "BusyBox 1.x"},
}

// Table is the built-in aliases with the user's overrides applied.
type Table struct {
	m map[string]Alias
}

// New returns the built-in table with overrides (name → reference) from the
// user's configuration applied on top.
func New(overrides map[string]string) Table {
	t := Table{m: make(map[string]Alias, len(builtin)+len(overrides))}
	for _, a := range builtin {
		a.Source = "builtin"
		t.m[a.Name] = a
	}
	for name, ref := range overrides {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || ref == "" {
			continue
		}
		t.m[name] = Alias{Name: name, Ref: ref, Source: "config"}
	}
	return t
}

// Lookup returns the alias for name (case-insensitive, an optional ":latest"
// is not an alias).
func (t Table) Lookup(name string) (Alias, bool) {
	a, ok := t.m[strings.ToLower(name)]
	return a, ok
}

// List returns all aliases sorted by name.
func (t Table) List() []Alias {
	out := make([]Alias, 0, len(t.m))
	for _, a := range t.m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the alias names, sorted (for shell completion).
func (t Table) Names() []string {
	l := t.List()
	out := make([]string, len(l))
	for i, a := range l {
		out[i] = a.Name
	}
	return out
}

// Closest returns the alias name nearest to name by edit distance, or "" when
// none is near enough to be a plausible typo.
func (t Table) Closest(name string) string {
	best, bestD := "", 3
	for n := range t.m {
		if d := distance(strings.ToLower(name), n); d < bestD || (d == bestD && n < best && best != "") {
			best, bestD = n, d
		}
	}
	return best
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
