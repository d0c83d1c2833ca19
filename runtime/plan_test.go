package runtime

import (
	"slices"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/runtime/mount"
)

var (
	keepID = IDMaps{
		UIDs:      IDMap{{0, 1, 1000}, {1000, 0, 1}, {1001, 1001, 64535}},
		GIDs:      IDMap{{0, 1, 1000}, {1000, 0, 1}, {1001, 1001, 64535}},
		Setgroups: true,
	}
	singleID = IDMaps{UIDs: IDMap{{0, 1000, 1}}, GIDs: IDMap{{0, 1000, 1}}}
)

func planSpec() *Spec {
	return &Spec{
		Version: SpecVersion, ID: "0123456789ab",
		Lowers:       []string{"/store/l2", "/store/l1"},
		ContainerDir: "/home/u/.local/share/devbox/containers/0123456789ab",
		Args:         []string{"sh"}, Hostname: "box", Net: "none",
	}
}

func planStrings(t *testing.T, s *Spec, ids IDMaps) []string {
	t.Helper()
	p, err := Plan(s, ids)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range p {
		out = append(out, m.String())
	}
	return out
}

func TestPlanDefault(t *testing.T) {
	const dir = "/home/u/.local/share/devbox/containers/0123456789ab"
	want := []string{
		"rootfs overlay overlay -> / lowerdir=/store/l2:/store/l1,upperdir=" + dir + "/upper,workdir=" + dir + "/work,userxattr",
		"fresh proc proc -> /proc [nosuid,nodev,noexec]",
		"fresh sysfs sysfs -> /sys [ro,nosuid,nodev,noexec]",
		"fresh tmpfs tmpfs -> /dev [nosuid,strictatime] mode=755,size=65536k",
		"bind /dev/null -> /dev/null [bind] (optional)",
		"bind /dev/zero -> /dev/zero [bind] (optional)",
		"bind /dev/full -> /dev/full [bind] (optional)",
		"bind /dev/random -> /dev/random [bind] (optional)",
		"bind /dev/urandom -> /dev/urandom [bind] (optional)",
		"bind /dev/tty -> /dev/tty [bind] (optional)",
		"fresh devpts devpts -> /dev/pts [nosuid,noexec] newinstance,ptmxmode=0666,mode=0620,gid=5",
		"symlink pts/ptmx -> /dev/ptmx",
		"fresh tmpfs shm -> /dev/shm [nosuid,nodev,noexec] mode=1777,size=65536k",
		"fresh mqueue mqueue -> /dev/mqueue [nosuid,nodev,noexec]",
		"symlink /proc/self/fd -> /dev/fd",
		"symlink /proc/self/fd/0 -> /dev/stdin",
		"symlink /proc/self/fd/1 -> /dev/stdout",
		"symlink /proc/self/fd/2 -> /dev/stderr",
		"bind " + dir + "/hosts -> /etc/hosts [bind]",
		"bind " + dir + "/hostname -> /etc/hostname [bind]",
		"bind " + dir + "/resolv.conf -> /etc/resolv.conf [bind]",
		"pivot -> /",
		"mask /dev/null -> /proc/acpi",
		"mask /dev/null -> /proc/kcore",
		"mask /dev/null -> /proc/keys",
		"mask /dev/null -> /proc/latency_stats",
		"mask /dev/null -> /proc/timer_list",
		"mask /dev/null -> /proc/timer_stats",
		"mask /dev/null -> /proc/sched_debug",
		"mask /dev/null -> /proc/scsi",
		"mask /dev/null -> /sys/firmware",
		"readonly -> /proc/bus",
		"readonly -> /proc/fs",
		"readonly -> /proc/irq",
		"readonly -> /proc/sys",
		"readonly -> /proc/sysrq-trigger",
	}
	got := planStrings(t, planSpec(), keepID)
	if !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	p, _ := Plan(planSpec(), keepID)
	ov := p[0].Overlay
	if ov == nil || ov.Upper != dir+"/upper" || ov.Work != dir+"/work" || ov.Merged != dir+"/merged" || ov.Copy != dir+"/rootfs-copy" || !slices.Equal(ov.Lower, []string{"/store/l2", "/store/l1"}) {
		t.Errorf("overlay dirs: %+v", ov)
	}
}

func TestPlanVariants(t *testing.T) {
	for _, tc := range []struct {
		name        string
		edit        func(*Spec)
		ids         IDMaps
		contains    []string
		notContains []string
	}{
		{
			name:     "ephemeral box: a volatile overlay",
			edit:     func(s *Spec) { s.Remove = true },
			ids:      keepID,
			contains: []string{"rootfs overlay overlay -> / lowerdir=/store/l2:/store/l1,upperdir=" + planSpec().ContainerDir + "/upper,workdir=" + planSpec().ContainerDir + "/work,userxattr,volatile"},
		},
		{
			name:        "single id mapping: devpts without gid=5",
			ids:         singleID,
			contains:    []string{"fresh devpts devpts -> /dev/pts [nosuid,noexec] newinstance,ptmxmode=0666,mode=0620"},
			notContains: []string{"gid=5"},
		},
		{
			name:        "host network: the host's /sys, read-only, recursively",
			edit:        func(s *Spec) { s.Net = "host" },
			ids:         keepID,
			contains:    []string{"bind /sys -> /sys [ro,bind,rec]"},
			notContains: []string{"fresh sysfs"},
		},
		{
			name: "extra mounts after the standard ones, before the pivot",
			edit: func(s *Spec) {
				s.Mounts = []Mount{
					{Source: "/home/u", Target: "/home/u"},
					{Source: "/run/user/1000/bus", Target: "/run/user/1000/bus/", ReadOnly: true},
					{Source: "/opt/maybe", Target: "/opt/x/../maybe", Optional: true},
				}
			},
			ids: keepID,
			contains: []string{
				"bind /home/u -> /home/u [bind,rec]",
				"bind /run/user/1000/bus -> /run/user/1000/bus [ro,bind,rec]",
				"bind /opt/maybe -> /opt/maybe [bind,rec] (optional)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := planSpec()
			if tc.edit != nil {
				tc.edit(s)
			}
			got := planStrings(t, s, tc.ids)
			all := strings.Join(got, "\n")
			for _, c := range tc.contains {
				if !slices.Contains(got, c) {
					t.Errorf("plan lacks %q:\n%s", c, all)
				}
			}
			for _, c := range tc.notContains {
				if strings.Contains(all, c) {
					t.Errorf("plan has %q:\n%s", c, all)
				}
			}
			pivot := slices.Index(got, "pivot -> /")
			for i, m := range got {
				if strings.HasPrefix(m, "bind ") && strings.Contains(m, "bind,rec]") && !strings.HasPrefix(m, "bind /sys") {
					if i > pivot || i < slices.Index(got, "bind "+s.ContainerDir+"/resolv.conf -> /etc/resolv.conf [bind]") {
						t.Errorf("extra mount %q out of place", m)
					}
				}
			}
		})
	}
}

func TestPlanRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		err  string
	}{
		{"relative mount target", func(s *Spec) { s.Mounts = []Mount{{Source: "/a", Target: "a"}} }, `mount target "a" is not an absolute path`},
		{"relative mount source", func(s *Spec) { s.Mounts = []Mount{{Source: "a", Target: "/a"}} }, `mount source "a" is not an absolute path`},
		{"mount over the root", func(s *Spec) { s.Mounts = []Mount{{Source: "/a", Target: "/x/.."}} }, "cannot mount over the box's root"},
		{"relative container dir", func(s *Spec) { s.ContainerDir = "containers/x" }, "is not an absolute path"},
		{"relative layer", func(s *Spec) { s.Lowers = []string{"l1"} }, `layer directory "l1" is not an absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := planSpec()
			tc.edit(s)
			if _, err := Plan(s, keepID); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestOverlayOptions(t *testing.T) {
	for _, tc := range []struct {
		ov    mount.Overlay
		plain bool
	}{
		{mount.Overlay{Lower: []string{"/a", "/b"}, Upper: "/u", Work: "/w"}, true},
		{mount.Overlay{Lower: []string{"/a:b"}, Upper: "/u", Work: "/w"}, false},
		{mount.Overlay{Lower: []string{"/a"}, Upper: "/u,x", Work: "/w"}, false},
		{mount.Overlay{Lower: []string{"/a"}, Upper: "/u", Work: `/w\x`}, false},
	} {
		if got := mount.Plain(&tc.ov); got != tc.plain {
			t.Errorf("Plain(%+v) = %v", tc.ov, got)
		}
	}
	if got := mount.OverlayData(&mount.Overlay{Lower: []string{"/a", "/b"}, Upper: "/u", Work: "/w"}); got != "lowerdir=/a:/b,upperdir=/u,workdir=/w" {
		t.Errorf("OverlayData = %q", got)
	}
}

func TestEtcFiles(t *testing.T) {
	s := planSpec()
	s.ResolvConf = "nameserver 1.1.1.1"
	got := EtcFiles(s)
	want := []EtcFile{
		{"hosts", "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbox\n"},
		{"hostname", "/etc/hostname", "box\n"},
		{"resolv.conf", "/etc/resolv.conf", "nameserver 1.1.1.1\n"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("EtcFiles = %q", got)
	}
	s.Hosts = "10.0.0.1 db\n"
	if got := EtcFiles(s)[0].Content; got != "10.0.0.1 db\n" {
		t.Errorf("hosts from the spec = %q", got)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		"/proc":            "/proc",
		`/with\040space`:   "/with space",
		`/tab\011and\134b`: "/tab\tand\\b",
		`/trailing\04`:     `/trailing\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
