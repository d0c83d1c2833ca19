package doctor

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime/device"
)

// fakeHost is a machine described by maps. Paths not in files or stats do
// not exist; Statfs answers for the longest configured prefix, like mounts.
type fakeHost struct {
	files    map[string]string
	stats    map[string]FileInfo
	xattrs   map[string][]byte // path + "|" + name
	bins     map[string]string // LookPath
	mounts   map[string]FSInfo
	denied   map[string]bool // Access fails
	deadSock map[string]bool // Dial fails
}

func (h *fakeHost) ReadFile(p string) ([]byte, error) {
	if s, ok := h.files[p]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

func (h *fakeHost) Stat(p string) (FileInfo, error) {
	if fi, ok := h.stats[p]; ok {
		return fi, nil
	}
	if _, ok := h.files[p]; ok {
		return FileInfo{Mode: 0o644}, nil
	}
	return FileInfo{}, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
}

func (h *fakeHost) Getxattr(p, name string) ([]byte, error) {
	if b, ok := h.xattrs[p+"|"+name]; ok {
		return b, nil
	}
	return nil, &fs.PathError{Op: "getxattr", Path: p, Err: errors.New("no data available")}
}

func (h *fakeHost) LookPath(f string) (string, error) {
	if p, ok := h.bins[f]; ok {
		return p, nil
	}
	return "", errors.New("executable file not found in $PATH")
}

func (h *fakeHost) Statfs(p string) (FSInfo, error) {
	best, found := "", false
	for m := range h.mounts {
		if (p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/")) && len(m) >= len(best) {
			best, found = m, true
		}
	}
	if !found {
		return FSInfo{}, &fs.PathError{Op: "statfs", Path: p, Err: fs.ErrNotExist}
	}
	return h.mounts[best], nil
}

func (h *fakeHost) Access(p string, _ uint32) error {
	if h.denied[p] {
		return errors.New("permission denied")
	}
	if _, err := h.Stat(p); err != nil {
		return err
	}
	return nil
}

func (h *fakeHost) Dial(s string) error {
	if h.deadSock[s] {
		return errors.New("connection refused")
	}
	if fi, err := h.Stat(s); err != nil || fi.Mode&fs.ModeSocket == 0 {
		return errors.New("no such file or directory")
	}
	return nil
}

type fakeProber struct{ userns, overlay error }

func (p fakeProber) Userns() error        { return p.userns }
func (p fakeProber) Overlay(string) error { return p.overlay }
func (p *fakeProber) set(u, o error)      { p.userns, p.overlay = u, o }
func dir(mode fs.FileMode, uid int) FileInfo {
	return FileInfo{Mode: fs.ModeDir | mode, UID: uid, GID: uid}
}

const (
	ext4  = 0xef53
	GiB   = 1 << 30
	store = "/home/dev/.local/share/devbox"
)

// healthy returns a host on which every check passes, and its env.
func healthy() (*fakeHost, *Env, *fakeProber) {
	svc := "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service"
	h := &fakeHost{
		files: map[string]string{
			sysctlMaxUserns:                        "63000\n",
			"/proc/sys/kernel/osrelease":           "6.8.0-31-generic\n",
			"/etc/subuid":                          "dev:100000:65536\nother:165536:65536\n",
			"/etc/subgid":                          "dev:100000:65536\nother:165536:65536\n",
			"/proc/self/cgroup":                    "0::/user.slice/user-1000.slice/session-2.scope\n",
			svc + "/cgroup.controllers":            "cpu io memory pids\n",
			"/home/dev/.config/devbox/config.toml": "",
		},
		stats: map[string]FileInfo{
			"/usr/bin/newuidmap": {Mode: fs.ModeSetuid | 0o755},
			"/usr/bin/newgidmap": {Mode: fs.ModeSetuid | 0o755},
			"/run/user/1000":     dir(0o700, 1000),
			"/run/user/1000/bus": {Mode: fs.ModeSocket | 0o666, UID: 1000},
			"/dev/fuse":          {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666},
			"/dev/net/tun":       {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666},
			svc:                  dir(0o755, 1000),
			"/home":              dir(0o755, 0),
			"/home/dev":          dir(0o700, 1000),
			store:                dir(0o700, 1000),
			store + "/tmp":       dir(0o700, 1000),
			"/tmp":               dir(0o1777, 0),
			"/":                  dir(0o755, 0),
		},
		xattrs: map[string][]byte{},
		bins: map[string]string{
			"newuidmap": "/usr/bin/newuidmap", "newgidmap": "/usr/bin/newgidmap",
			"fuse-overlayfs": "/usr/bin/fuse-overlayfs", "pasta": "/usr/bin/pasta", "slirp4netns": "/usr/bin/slirp4netns",
		},
		mounts: map[string]FSInfo{
			"/":              {Type: ext4, Avail: 50 * GiB},
			"/sys/fs/cgroup": {Type: magicCgroup2},
		},
		denied:   map[string]bool{},
		deadSock: map[string]bool{},
	}
	env := map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}
	p := &fakeProber{}
	e := &Env{
		Host:       h,
		Getenv:     func(k string) string { return env[k] },
		UID:        1000,
		GID:        1000,
		User:       "dev",
		Home:       "/home/dev",
		Exe:        "/usr/local/bin/devbox",
		ConfigPath: "/home/dev/.config/devbox/config.toml",
		StoreRoot:  store,
		Mapping: rootless.Mapping{UID: 1000, GID: 1000, User: "dev",
			SubUIDs: []rootless.Range{{Start: 100000, Length: 65536}}, SubGIDs: []rootless.Range{{Start: 100000, Length: 65536}}},
		Probe: p,
	}
	return h, e, p
}

func setenv(e *Env, k, v string) {
	old := e.Getenv
	e.Getenv = func(key string) string {
		if key == k {
			return v
		}
		return old(key)
	}
}

// capXattr builds a security.capability value (revision 2).
func capXattr(effective bool, caps ...uint) []byte {
	magic := uint32(0x02000000)
	if effective {
		magic |= 1
	}
	var perm uint32
	for _, c := range caps {
		perm |= 1 << c
	}
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, magic)
	binary.LittleEndian.PutUint32(b[4:], perm)
	return b
}

func TestHealthyHostPasses(t *testing.T) {
	_, e, _ := healthy()
	rs := Run(*e)
	want := []string{"userns", "newuidmap", "subids", "runtime-dir", "overlay", "fuse-overlayfs", "filesystem", "cgroup", "dbus", "network", "config", "store", "gpu"}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d", len(rs), len(want))
	}
	for i, r := range rs {
		if r.Check != want[i] {
			t.Errorf("result %d is %q, want %q (the order is part of the contract)", i, r.Check, want[i])
		}
		if r.Status != Pass {
			t.Errorf("%s: %s: %s (hint: %s)", r.Check, r.Status, r.Message, r.Hint)
		}
	}
	if Failed(rs) {
		t.Error("Failed() on a healthy host")
	}
}

func TestChecks(t *testing.T) {
	errProbe := errors.New("mount: operation not permitted")
	cases := []struct {
		name   string
		check  string
		setup  func(h *fakeHost, e *Env, p *fakeProber)
		status Status
		msg    []string // substrings of the message
		hint   []string // substrings of the hint
	}{
		// userns
		{"userns works", "userns", nil, Pass, []string{"user namespaces work", "63000"}, nil},
		{"max_user_namespaces 0", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files[sysctlMaxUserns] = "0"
			p.userns = errProbe
		}, Fail, []string{"user.max_user_namespaces is 0"}, []string{"sudo sysctl -w user.max_user_namespaces=28633", "/etc/sysctl.d/"}},
		{"debian clone sysctl", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files[sysctlCloneUserns] = "0\n"
			p.userns = errProbe
		}, Fail, []string{"kernel.unprivileged_userns_clone is 0"}, []string{"sudo sysctl -w kernel.unprivileged_userns_clone=1"}},
		{"ubuntu apparmor", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files[sysctlAppArmor] = "1"
			p.userns = errProbe
		}, Fail, []string{"AppArmor restricts", "/usr/local/bin/devbox", "operation not permitted"}, []string{
			"sudo tee /etc/apparmor.d/devbox", "abi <abi/4.0>,", "include <tunables/global>",
			"profile devbox /usr/local/bin/devbox flags=(unconfined) {\n  userns,\n}", "sudo apparmor_parser -r /etc/apparmor.d/devbox"}},
		{"apparmor with the CLI in the runtime directory", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files[sysctlAppArmor] = "1"
			e.Getenv = func(k string) string {
				if k == "XDG_RUNTIME_DIR" {
					return "/run/user/1000"
				}
				return ""
			}
			e.NSExe = "/run/user/1000/devbox/devbox-cli-0123456789abcdef/devbox-cli"
			p.userns = errProbe
		}, Fail, []string{"no profile allows /run/user/1000/devbox/devbox-cli-"}, []string{"/usr/libexec/devbox/devbox-cli", "must not name"}},
		{"apparmor with the packaged CLI", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files[sysctlAppArmor] = "1"
			e.NSExe = "/usr/libexec/devbox/devbox-cli"
			p.userns = errProbe
		}, Fail, []string{"no profile allows /usr/libexec/devbox/devbox-cli"}, []string{"profile devbox /usr/libexec/devbox/devbox-cli flags=(unconfined)"}},
		{"apparmor profile for another path", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files[sysctlAppArmor] = "1"
			h.files[appArmorProfile] = "profile devbox /opt/old/devbox flags=(unconfined) { userns, }"
			p.userns = errProbe
		}, Fail, []string{"names another path"}, []string{"profile devbox /usr/local/bin/devbox"}},
		{"apparmor path with a space", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files[sysctlAppArmor] = "1"
			e.Exe = "/home/dev/my tools/devbox"
			p.userns = errProbe
		}, Fail, nil, []string{`profile devbox "/home/dev/my tools/devbox" flags=(unconfined)`}},
		{"apparmor allows devbox", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files[sysctlAppArmor] = "1"
		}, Pass, []string{"a profile allows devbox"}, nil},
		{"userns blocked otherwise", "userns", func(h *fakeHost, e *Env, p *fakeProber) {
			p.userns = errors.New("fork/exec /proc/self/exe: operation not permitted")
		}, Fail, []string{"creating a user namespace failed: fork/exec"}, []string{"container"}},
		{"userns not tried", "userns", func(h *fakeHost, e *Env, p *fakeProber) { e.Probe = nil }, Pass, []string{"not tried"}, nil},

		// newuidmap
		{"setuid helpers", "newuidmap", nil, Pass, []string{"/usr/bin/newuidmap (setuid root)", "/usr/bin/newgidmap (setuid root)"}, nil},
		{"file capabilities", "newuidmap", func(h *fakeHost, e *Env, p *fakeProber) {
			h.stats["/usr/bin/newuidmap"] = FileInfo{Mode: 0o755}
			h.stats["/usr/bin/newgidmap"] = FileInfo{Mode: 0o755}
			h.xattrs["/usr/bin/newuidmap|security.capability"] = capXattr(true, capSetuid)
			h.xattrs["/usr/bin/newgidmap|security.capability"] = capXattr(true, capSetgid)
		}, Pass, []string{"file capability cap_setuid", "file capability cap_setgid"}, nil},
		{"capability not effective", "newuidmap", func(h *fakeHost, e *Env, p *fakeProber) {
			h.stats["/usr/bin/newuidmap"] = FileInfo{Mode: 0o755}
			h.xattrs["/usr/bin/newuidmap|security.capability"] = capXattr(false, capSetuid)
		}, Fail, []string{"/usr/bin/newuidmap is neither setuid root"}, []string{"sudo chmod u+s /usr/bin/newuidmap"}},
		{"wrong capability", "newuidmap", func(h *fakeHost, e *Env, p *fakeProber) {
			h.stats["/usr/bin/newgidmap"] = FileInfo{Mode: 0o755}
			h.xattrs["/usr/bin/newgidmap|security.capability"] = capXattr(true, capSetuid)
		}, Fail, []string{"/usr/bin/newgidmap"}, []string{"sudo chmod u+s /usr/bin/newgidmap"}},
		{"setuid but not root's", "newuidmap", func(h *fakeHost, e *Env, p *fakeProber) {
			h.stats["/usr/bin/newuidmap"] = FileInfo{Mode: fs.ModeSetuid | 0o755, UID: 1000}
		}, Fail, nil, []string{"sudo chmod u+s /usr/bin/newuidmap"}},
		{"helpers missing", "newuidmap", func(h *fakeHost, e *Env, p *fakeProber) {
			delete(h.bins, "newuidmap")
			delete(h.bins, "newgidmap")
		}, Fail, []string{"newuidmap and newgidmap not found"}, []string{"sudo apt install uidmap", "dnf install shadow-utils"}},
		{"helpers missing, no subids", "newuidmap", func(h *fakeHost, e *Env, p *fakeProber) {
			delete(h.bins, "newuidmap")
			e.Mapping.SubUIDs, e.Mapping.SubGIDs = nil, nil
		}, Warn, []string{"newuidmap not found"}, []string{"sudo apt install uidmap"}},
		{"nosuid mount", "newuidmap", func(h *fakeHost, e *Env, p *fakeProber) {
			h.mounts["/usr"] = FSInfo{Type: ext4, Flags: stNosuid}
		}, Fail, []string{"mounted nosuid"}, []string{"remount,suid /usr/bin"}},

		// subids
		{"subids", "subids", nil, Pass, []string{"subuid 100000-165535 (65536 ids)", "subgid 100000-165535"}, nil},
		{"no subids", "subids", func(h *fakeHost, e *Env, p *fakeProber) {
			e.Mapping.SubUIDs, e.Mapping.SubGIDs = nil, nil
			h.files["/etc/subuid"] = "other:100000:65536\n"
			h.files["/etc/subgid"] = "other:100000:65536\nthird:200000:1000\n"
		}, Warn, []string{"no subordinate id range for dev"}, []string{"sudo usermod --add-subuids 262144-327679 --add-subgids 262144-327679 dev"}},
		{"range too small", "subids", func(h *fakeHost, e *Env, p *fakeProber) {
			e.Mapping.SubUIDs = []rootless.Range{{Start: 100000, Length: 1000}}
		}, Warn, []string{"only 1000 ids"}, []string{"usermod --add-subuids"}},
		{"overlapping ranges", "subids", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files["/etc/subuid"] = "dev:100000:65536\nother:130000:65536\n"
		}, Warn, []string{"overlaps the one of other"}, []string{"a range of their own"}},
		{"ranges from getsubids", "subids", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files["/etc/subuid"] = ""
		}, Pass, []string{"from getsubids"}, nil},
		{"detect failed", "subids", func(h *fakeHost, e *Env, p *fakeProber) {
			e.MappingErr = errors.New("getsubids: broken (hint: check sssd)")
		}, Fail, []string{"getsubids: broken"}, []string{"check sssd"}},
		{"root", "subids", func(h *fakeHost, e *Env, p *fakeProber) { e.UID = 0 }, Warn, []string{"running as root"}, []string{"your own user"}},

		// runtime-dir
		{"runtime dir", "runtime-dir", nil, Pass, []string{"/run/user/1000 (yours, mode 0700)"}, nil},
		{"runtime dir unset", "runtime-dir", func(h *fakeHost, e *Env, p *fakeProber) { setenv(e, "XDG_RUNTIME_DIR", "") },
			Warn, []string{"not set", "/tmp/devbox-1000"}, []string{"machinectl shell dev@", "sudo loginctl enable-linger dev", "export XDG_RUNTIME_DIR=/run/user/1000"}},
		{"su kept root's runtime dir", "runtime-dir", func(h *fakeHost, e *Env, p *fakeProber) {
			setenv(e, "XDG_RUNTIME_DIR", "/run/user/0")
			h.stats["/run/user/0"] = dir(0o700, 0)
		}, Fail, []string{"belongs to uid 0, not to you", "su or sudo"}, []string{"machinectl shell dev@", "export XDG_RUNTIME_DIR=/run/user/1000"}},
		{"runtime dir missing", "runtime-dir", func(h *fakeHost, e *Env, p *fakeProber) { delete(h.stats, "/run/user/1000") },
			Fail, []string{"does not exist"}, []string{"enable-linger dev"}},
		{"runtime dir of a user that is gone", "runtime-dir", func(h *fakeHost, e *Env, p *fakeProber) { setenv(e, "XDG_RUNTIME_DIR", "/run/user/0") },
			Fail, []string{"/run/user/0 does not exist"}, []string{"export XDG_RUNTIME_DIR=/run/user/1000"}},
		{"runtime dir open", "runtime-dir", func(h *fakeHost, e *Env, p *fakeProber) { h.stats["/run/user/1000"] = dir(0o755, 1000) },
			Warn, []string{"mode 0755"}, []string{"chmod 0700 /run/user/1000"}},
		{"runtime dir relative", "runtime-dir", func(h *fakeHost, e *Env, p *fakeProber) { setenv(e, "XDG_RUNTIME_DIR", "run") },
			Fail, []string{"not an absolute path"}, []string{"export XDG_RUNTIME_DIR=/run/user/1000"}},

		// overlay
		{"overlay", "overlay", nil, Pass, []string{"userxattr", store + "/tmp", "ext4"}, nil},
		{"overlay fails", "overlay", func(h *fakeHost, e *Env, p *fakeProber) { p.overlay = errors.New("mount -t overlay: invalid argument") },
			Warn, []string{"failed", "invalid argument", "fall back"}, []string{"--store DIR"}},
		{"old kernel", "overlay", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files["/proc/sys/kernel/osrelease"] = "5.4.0-150-generic"
			p.overlay = errors.New("unknown option userxattr")
		}, Warn, nil, []string{"older than 5.11"}},
		{"overlay without userns", "overlay", func(h *fakeHost, e *Env, p *fakeProber) { p.userns = errProbe },
			Warn, []string{"not tried: user namespaces do not work"}, nil},
		{"overlay outside the store", "overlay", func(h *fakeHost, e *Env, p *fakeProber) {
			delete(h.stats, store+"/tmp")
		}, Pass, []string{"/tmp"}, nil},

		// fuse-overlayfs
		{"fuse", "fuse-overlayfs", nil, Pass, []string{"/usr/bin/fuse-overlayfs and /dev/fuse"}, nil},
		{"fuse not needed", "fuse-overlayfs", func(h *fakeHost, e *Env, p *fakeProber) { delete(h.bins, "fuse-overlayfs") },
			Pass, []string{"not needed"}, nil},
		{"no fallback", "fuse-overlayfs", func(h *fakeHost, e *Env, p *fakeProber) {
			delete(h.bins, "fuse-overlayfs")
			p.overlay = errProbe
		}, Warn, []string{"copying"}, []string{"sudo apt install fuse-overlayfs"}},
		{"no /dev/fuse", "fuse-overlayfs", func(h *fakeHost, e *Env, p *fakeProber) {
			h.denied["/dev/fuse"] = true
			p.overlay = errProbe
		}, Warn, []string{"/dev/fuse: not readable and writable"}, []string{"modprobe fuse"}},

		// filesystem
		{"local disks", "filesystem", nil, Pass, []string{"store on ext4, home on ext4"}, nil},
		{"store on NFS", "filesystem", func(h *fakeHost, e *Env, p *fakeProber) { h.mounts["/home"] = FSInfo{Type: magicNFS, Avail: 10 * GiB} },
			Fail, []string{"is on NFS", "pulls fail"}, []string{"mktemp -d /var/tmp/devbox-store.XXXXXXXXXX", "[store]", "/home/dev/.config/devbox/config.toml"}},
		{"home on NFS, store local", "filesystem", func(h *fakeHost, e *Env, p *fakeProber) {
			h.mounts["/home"] = FSInfo{Type: magicNFS}
			e.StoreRoot = "/var/tmp/dev-devbox"
		}, Pass, []string{"home /home/dev is on NFS", "store is on ext4"}, nil},
		{"store noexec", "filesystem", func(h *fakeHost, e *Env, p *fakeProber) { h.mounts[store] = FSInfo{Type: ext4, Flags: stNoexec} },
			Warn, []string{"mounted noexec"}, []string{"local disk"}},
		{"home noexec", "filesystem", func(h *fakeHost, e *Env, p *fakeProber) {
			h.mounts["/home/dev"] = FSInfo{Type: ext4, Flags: stNoexec}
			e.StoreRoot = "/var/tmp/s"
		}, Warn, []string{"your home /home/dev is mounted noexec"}, []string{"noexec"}},

		// cgroup
		{"cgroup v2 delegated", "cgroup", nil, Pass, []string{"cgroup v2", "cpu io memory pids", "outside your user manager", "a systemd scope each"}, nil},
		{"devbox.scope running", "cgroup", func(h *fakeHost, e *Env, p *fakeProber) {
			svc := "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service"
			h.files["/proc/self/cgroup"] = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1.scope\n"
			h.files[svc+"/app.slice/devbox.scope/keeper/cgroup.procs"] = "4242\n"
		}, Pass, []string{"app.slice/devbox.scope (kept by pid 4242)"}, nil},
		{"devbox.scope to be made", "cgroup", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files["/proc/self/cgroup"] = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1.scope\n"
		}, Pass, []string{"app.slice/devbox.scope, made at the first box"}, nil},
		{"memory not delegated", "cgroup", func(h *fakeHost, e *Env, p *fakeProber) {
			h.files["/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers"] = "cpu pids"
		}, Warn, []string{"io, memory not delegated", "delegated: cpu pids"}, []string{"Delegate=cpu cpuset io memory pids", "daemon-reload"}},
		{"hybrid", "cgroup", func(h *fakeHost, e *Env, p *fakeProber) {
			h.mounts["/sys/fs/cgroup"] = FSInfo{Type: magicTmpfs}
			h.mounts["/sys/fs/cgroup/unified"] = FSInfo{Type: magicCgroup2}
		}, Warn, []string{"hybrid cgroups", "without limits"}, []string{"systemd.unified_cgroup_hierarchy=1", "update-grub"}},
		{"v1", "cgroup", func(h *fakeHost, e *Env, p *fakeProber) { h.mounts["/sys/fs/cgroup"] = FSInfo{Type: magicTmpfs} },
			Warn, []string{"cgroup v1"}, []string{"systemd.unified_cgroup_hierarchy=1"}},
		{"own cgroup delegated", "cgroup", func(h *fakeHost, e *Env, p *fakeProber) {
			delete(h.stats, "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service")
			h.files["/proc/self/cgroup"] = "0::/box\n"
			h.stats["/sys/fs/cgroup/box"] = dir(0o755, 1000)
			h.files["/sys/fs/cgroup/box/cgroup.controllers"] = "cpu io memory pids"
		}, Pass, []string{"/sys/fs/cgroup/box"}, nil},
		{"nothing delegated", "cgroup", func(h *fakeHost, e *Env, p *fakeProber) {
			delete(h.stats, "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service")
			h.stats["/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"] = dir(0o755, 0)
		}, Warn, []string{"no cgroup is delegated", "session-2.scope"}, []string{"machinectl shell dev@"}},

		// dbus
		{"user bus", "dbus", nil, Pass, []string{"/run/user/1000/bus"}, nil},
		{"bus from the runtime dir", "dbus", func(h *fakeHost, e *Env, p *fakeProber) { setenv(e, "DBUS_SESSION_BUS_ADDRESS", "") },
			Pass, []string{"/run/user/1000/bus"}, nil},
		{"dead bus", "dbus", func(h *fakeHost, e *Env, p *fakeProber) { h.deadSock["/run/user/1000/bus"] = true },
			Warn, []string{"does not answer", "connection refused"}, []string{"systemctl --user start dbus.socket"}},
		{"no bus", "dbus", func(h *fakeHost, e *Env, p *fakeProber) {
			setenv(e, "DBUS_SESSION_BUS_ADDRESS", "")
			delete(h.stats, "/run/user/1000/bus")
		}, Warn, []string{"no user D-Bus session"}, []string{"sudo apt install dbus-user-session", "enable-linger dev"}},
		{"abstract bus", "dbus", func(h *fakeHost, e *Env, p *fakeProber) {
			setenv(e, "DBUS_SESSION_BUS_ADDRESS", "unix:abstract=/tmp/dbus-x,guid=1")
		}, Pass, []string{"not tried"}, nil},

		// network
		{"network helpers", "network", nil, Pass, []string{"built-in gvisor", "pasta (/usr/bin/pasta)", "slirp4netns", "/dev/net/tun usable"}, nil},
		{"no helpers", "network", func(h *fakeHost, e *Env, p *fakeProber) {
			delete(h.bins, "pasta")
			delete(h.bins, "slirp4netns")
		}, Pass, []string{"built-in gvisor driver; /dev/net/tun usable"}, nil},
		{"no tun", "network", func(h *fakeHost, e *Env, p *fakeProber) { delete(h.stats, "/dev/net/tun") },
			Warn, []string{"/dev/net/tun: missing", "--net host"}, []string{"modprobe tun", "[network] mode"}},
		{"tun not a device", "network", func(h *fakeHost, e *Env, p *fakeProber) { h.stats["/dev/net/tun"] = FileInfo{Mode: 0o666} },
			Warn, []string{"not a character device"}, nil},

		// config
		{"config", "config", nil, Pass, []string{"config.toml"}, nil},
		{"no config", "config", func(h *fakeHost, e *Env, p *fakeProber) { delete(h.files, e.ConfigPath) }, Pass, []string{"defaults apply"}, nil},
		{"broken config", "config", func(h *fakeHost, e *Env, p *fakeProber) {
			e.ConfigErr = errors.New("reading /x/config.toml: line 3: expected '=' (hint: fix the TOML syntax; docs/config.md shows an example)")
		}, Fail, []string{"line 3"}, []string{"fix the TOML syntax"}},

		// store
		{"store", "store", nil, Pass, []string{"writable, 50.0 GiB free"}, nil},
		{"store to be created", "store", func(h *fakeHost, e *Env, p *fakeProber) { delete(h.stats, store); delete(h.stats, store+"/tmp") },
			Pass, []string{"to be created in /home/dev"}, nil},
		{"store not writable", "store", func(h *fakeHost, e *Env, p *fakeProber) { h.denied[store] = true },
			Fail, []string{"not writable by you"}, []string{"--store DIR", "DEVBOX_STORE"}},
		{"store under /proc", "store", func(h *fakeHost, e *Env, p *fakeProber) {
			e.StoreRoot = "/proc/x"
			h.stats["/proc"] = dir(0o555, 0)
			h.denied["/proc"] = true
		}, Fail, []string{"/proc/x (to be created in /proc) is not writable"}, []string{"--store"}},
		{"store read-only", "store", func(h *fakeHost, e *Env, p *fakeProber) { h.mounts["/home"] = FSInfo{Type: ext4, Flags: stRdonly} },
			Fail, []string{"read-only filesystem"}, []string{"--store"}},
		{"disk full", "store", func(h *fakeHost, e *Env, p *fakeProber) { h.mounts["/"] = FSInfo{Type: ext4, Avail: 10 << 20} },
			Fail, []string{"only 10.0 MiB free", "pulls will fail"}, []string{"devbox image prune"}},
		{"disk low", "store", func(h *fakeHost, e *Env, p *fakeProber) { h.mounts["/"] = FSInfo{Type: ext4, Avail: 1 * GiB} },
			Warn, []string{"only 1.0 GiB free"}, []string{"devbox image prune"}},
		{"store is a file", "store", func(h *fakeHost, e *Env, p *fakeProber) { h.stats[store] = FileInfo{Mode: 0o644} },
			Fail, []string{"is not a directory"}, []string{"--store"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, e, p := healthy()
			if c.setup != nil {
				c.setup(h, e, p)
			}
			var got *Result
			for _, r := range Run(*e) {
				if strings.Contains(r.Message, "\n") {
					t.Errorf("%s: the message is not one line: %q", r.Check, r.Message)
				}
				if r.Status != Pass && r.Status != Warn && r.Status != Fail {
					t.Errorf("%s: status %q", r.Check, r.Status)
				}
				if r.Status != Pass && r.Hint == "" && r.Check == c.check && c.status != Pass && len(c.hint) > 0 {
					t.Errorf("%s: %s without a hint", r.Check, r.Status)
				}
				if r.Check == c.check {
					got = &r
				}
			}
			if got == nil {
				t.Fatalf("no result for %s", c.check)
			}
			if got.Status != c.status {
				t.Errorf("status %s, want %s: %s (hint: %s)", got.Status, c.status, got.Message, got.Hint)
			}
			for _, m := range c.msg {
				if !strings.Contains(got.Message, m) {
					t.Errorf("message %q does not contain %q", got.Message, m)
				}
			}
			for _, m := range c.hint {
				if !strings.Contains(got.Hint, m) {
					t.Errorf("hint %q does not contain %q", got.Hint, m)
				}
			}
		})
	}
}

func TestFailedDecidesExit(t *testing.T) {
	if Failed([]Result{{Status: Pass}, {Status: Warn}}) {
		t.Error("warnings alone count as failure")
	}
	if !Failed([]Result{{Status: Pass}, {Status: Fail}}) {
		t.Error("a failure is not reported")
	}
}

func TestParseFileCaps(t *testing.T) {
	v1 := make([]byte, 12)
	binary.LittleEndian.PutUint32(v1, 0x01000001)
	binary.LittleEndian.PutUint32(v1[4:], 1<<capSetuid)
	v3 := append(capXattr(true, capSetgid), 0, 0, 0, 0)
	v3[3] = 0x03
	hi := capXattr(false)
	binary.LittleEndian.PutUint32(hi[12:], 1) // capability 32
	cases := []struct {
		name string
		b    []byte
		perm uint64
		eff  bool
		ok   bool
	}{
		{"v1", v1, 1 << capSetuid, true, true},
		{"v2", capXattr(true, capSetuid, capSetgid), 1<<capSetuid | 1<<capSetgid, true, true},
		{"v3", v3, 1 << capSetgid, true, true},
		{"high word", hi, 1 << 32, false, true},
		{"short", []byte{1, 0}, 0, false, false},
		{"truncated v2", capXattr(true, capSetuid)[:12], 0, false, false},
		{"unknown revision", []byte{0, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 0, 0}, 0, false, false},
	}
	for _, c := range cases {
		perm, eff, ok := ParseFileCaps(c.b)
		if perm != c.perm || eff != c.eff || ok != c.ok {
			t.Errorf("%s: got %#x %v %v, want %#x %v %v", c.name, perm, eff, ok, c.perm, c.eff, c.ok)
		}
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]bool{"5.11.0": true, "6.8.0-31-generic": true, "5.10.210": false, "4.19": false, "garbage": false, "": false} {
		if got := kernelAtLeast(in, 5, 11); got != want {
			t.Errorf("kernelAtLeast(%q) = %v", in, got)
		}
	}
	for in, want := range map[string]string{
		"unix:path=/run/user/1/bus": "/run/user/1/bus",
		"unix:guid=x,path=/tmp/b":   "/tmp/b",
		"unix:abstract=/tmp/dbus":   "",
		"tcp:host=localhost,port=1": "",
		"":                          "",
	} {
		if got := busPath(in); got != want {
			t.Errorf("busPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ownCgroup("12:pids:/x\n0::/user.slice/a.scope\n"); got != "/user.slice/a.scope" {
		t.Errorf("ownCgroup = %q", got)
	}
	for _, c := range []struct {
		in        string
		msg, hint string
	}{
		{"boom (hint: fix it)", "boom", "fix it"},
		{"no hint here", "no hint here", ""},
		{"a (hint: b) and more", "a (hint: b) and more", ""},
	} {
		if m, h := SplitHint(c.in); m != c.msg || h != c.hint {
			t.Errorf("SplitHint(%q) = %q, %q", c.in, m, h)
		}
	}
	es := []subidEntry{{"a", 100000, 65536}, {"b", 165536, 65536}, {"c", 300000, 10}}
	if got := freeRange(es); got != 327680 {
		t.Errorf("freeRange = %d, want 327680", got)
	}
}

func TestDetect(t *testing.T) {
	h, e, _ := healthy()
	c := Detect(*e)
	if c.Userns != "allowed" || c.Overlay != "kernel" || c.Cgroup != "v2" || c.NewUIDMap != "/usr/bin/newuidmap" ||
		len(c.SubUID) != 1 || c.SubUID[0].Start != 100000 || strings.Join(c.Network, " ") != "pasta slirp4netns" ||
		strings.Join(c.CgroupControllers, " ") != "cpu io memory pids" {
		t.Errorf("healthy host: %+v", c)
	}
	h.files[sysctlAppArmor] = "1"
	h.files["/proc/sys/kernel/osrelease"] = "5.4.0"
	h.mounts["/sys/fs/cgroup"] = FSInfo{Type: magicTmpfs}
	h.mounts["/sys/fs/cgroup/unified"] = FSInfo{Type: magicCgroup2}
	delete(h.bins, "pasta")
	c = Detect(*e)
	if c.Userns != "restricted" || c.Overlay != "fuse-overlayfs" || c.Cgroup != "hybrid" || len(c.CgroupControllers) != 0 || strings.Join(c.Network, " ") != "slirp4netns" {
		t.Errorf("degraded host: %+v", c)
	}
	h.files[sysctlMaxUserns] = "0"
	delete(h.bins, "fuse-overlayfs")
	if c = Detect(*e); c.Userns != "disabled" || c.Overlay != "copy" {
		t.Errorf("disabled host: %+v", c)
	}
}

// FuzzHostFiles feeds arbitrary contents to every file the checks parse:
// no check may panic, and every message stays on one line.
func FuzzHostFiles(f *testing.F) {
	f.Add("dev:100000:65536\n", "0::/user.slice\n", "6.8.0", "unix:path=/run/user/1000/bus", "cpu io memory pids", []byte{0, 0, 0, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add("dev:x:y\n:::\n#c\ndev:-1:0", "0::\n0::../..", "5.", "unix:path=", "", []byte{1})
	f.Fuzz(func(t *testing.T, subuid, cgroup, release, bus, ctrls string, caps []byte) {
		h, e, _ := healthy()
		h.files["/etc/subuid"] = subuid
		h.files["/etc/subgid"] = subuid
		h.files["/proc/self/cgroup"] = cgroup
		h.files["/proc/sys/kernel/osrelease"] = release
		h.files["/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers"] = ctrls
		h.stats["/usr/bin/newuidmap"] = FileInfo{Mode: 0o755}
		h.xattrs["/usr/bin/newuidmap|security.capability"] = caps
		setenv(e, "DBUS_SESSION_BUS_ADDRESS", bus)
		e.Mapping.SubUIDs, e.Mapping.SubGIDs = nil, nil
		for _, r := range Run(*e) {
			if strings.ContainsAny(r.Message, "\n\r") {
				t.Errorf("%s: message on several lines: %q", r.Check, r.Message)
			}
		}
		_ = Detect(*e)
	})
}

func FuzzParseFileCaps(f *testing.F) {
	f.Add(capXattr(true, capSetuid))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		perm, eff, ok := ParseFileCaps(b)
		if !ok && (perm != 0 || eff) {
			t.Errorf("not ok but perm %#x eff %v", perm, eff)
		}
	})
}

// The real host answers: this machine's checks run without a prober.
func TestSystemHost(t *testing.T) {
	h := System()
	if _, err := h.ReadFile("/proc/self/status"); err != nil {
		t.Fatal(err)
	}
	fi, err := h.Stat("/")
	if err != nil || !fi.Mode.IsDir() {
		t.Fatalf("stat /: %+v %v", fi, err)
	}
	if _, err := h.Statfs("/"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Stat("/nonexistent/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of a missing path: %v", err)
	}
	if err := h.Dial("/nonexistent/socket"); err == nil {
		t.Error("dialing a missing socket succeeded")
	}
	u, _ := os.UserHomeDir()
	rs := Run(Env{Host: h, Getenv: os.Getenv, UID: os.Getuid(), GID: os.Getgid(), User: "u", Home: u, StoreRoot: t.TempDir(), Exe: "/usr/bin/devbox"})
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Check
	}
	if len(rs) != 13 {
		t.Errorf("checks: %v", names)
	}
}

// gpu passes without a GPU and says what dev boxes get; a driver without
// libraries or device nodes is a warning with the fix.
func TestGPU(t *testing.T) {
	full := &device.NVIDIA{Version: "535.54.03", Devices: []string{"/dev/nvidia0"}, Libraries: []string{"/usr/lib/libcuda.so.535.54.03"},
		Programs: []string{"/usr/bin/nvidia-smi"}}
	cases := []struct {
		nv      *device.NVIDIA
		err     error
		status  Status
		message string
	}{
		{nil, nil, Pass, "no NVIDIA driver loaded"},
		{full, nil, Pass, "NVIDIA driver 535.54.03: 1 device nodes, 1 libraries, 1 programs (nvidia-smi) bound into dev boxes"},
		{&device.NVIDIA{Version: "535.54.03", Devices: []string{"/dev/nvidia0"}}, nil, Warn, "none of its libraries"},
		{&device.NVIDIA{Version: "535.54.03", Libraries: full.Libraries}, nil, Warn, "no device nodes"},
		{nil, errors.New("reading the NVIDIA driver's version: permission denied"), Warn, "permission denied"},
	}
	for _, c := range cases {
		_, e, _ := healthy()
		e.FindNVIDIA = func() (*device.NVIDIA, error) { return c.nv, c.err }
		rs := Run(*e)
		r := rs[len(rs)-1]
		if r.Check != "gpu" || r.Status != c.status || !strings.Contains(r.Message, c.message) || (c.status == Warn && c.err == nil && r.Hint == "") {
			t.Errorf("%+v: %+v", c.nv, r)
		}
	}
}
