package runtime

import (
	"fmt"
	"path"
	"strings"

	"github.com/devbox-dev/devbox/runtime/mount"
	"golang.org/x/sys/unix"
)

// Masked and read-only paths, as runc and crun use them.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware",
	}
	readOnlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
	hostDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}
)

const (
	nosuidNodevNoexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	ttyGID            = 5
)

// Plan lists, in order, every mount step that assembles s's box: the root
// filesystem, /proc, /sys, /dev, the written /etc files and s.Mounts, the
// pivot, then the masked and read-only paths. ids are the box's id maps
// (devpts gets gid=5 only when group 5 is mapped). Plan is pure.
func Plan(s *Spec, ids IDMaps) ([]mount.Mount, error) {
	dir := strings.TrimRight(s.ContainerDir, "/")
	if !path.IsAbs(dir) {
		return nil, fmt.Errorf("container directory %q is not an absolute path", s.ContainerDir)
	}
	for _, l := range s.Lowers {
		if !path.IsAbs(l) {
			return nil, fmt.Errorf("layer directory %q is not an absolute path", l)
		}
	}
	ov := &mount.Overlay{
		Lower:  s.Lowers,
		Upper:  dir + "/upper",
		Work:   dir + "/work",
		Merged: dir + "/merged",
		Copy:   dir + "/rootfs-copy",
	}
	data := mount.OverlayData(ov) + ",userxattr"
	if s.Remove {
		// An ephemeral box's writable layer is deleted anyway: no sync of
		// the upper filesystem when the overlay goes.
		ov.Volatile = true
		data += ",volatile"
	}
	p := []mount.Mount{
		{Kind: mount.Rootfs, Type: "overlay", Source: "overlay", Target: "/", Data: data, Overlay: ov},
		{Kind: mount.Fresh, Type: "proc", Source: "proc", Target: "/proc", Flags: nosuidNodevNoexec},
	}
	if s.Net == "host" {
		// The network namespace is the host's, which this user namespace
		// does not own: sysfs cannot be mounted, the host's is bound.
		p = append(p, mount.Mount{Kind: mount.Bind, Source: "/sys", Target: "/sys", Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY})
	} else {
		p = append(p, mount.Mount{Kind: mount.Fresh, Type: "sysfs", Source: "sysfs", Target: "/sys", Flags: unix.MS_RDONLY | nosuidNodevNoexec})
	}
	p = append(p, mount.Mount{Kind: mount.Fresh, Type: "tmpfs", Source: "tmpfs", Target: "/dev", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"})
	for _, d := range hostDevices {
		p = append(p, mount.Mount{Kind: mount.Bind, Source: "/dev/" + d, Target: "/dev/" + d, Flags: unix.MS_BIND, Optional: true})
	}
	pts := "newinstance,ptmxmode=0666,mode=0620"
	if ids.GIDs.Contains(ttyGID) {
		pts += ",gid=5"
	}
	p = append(p,
		mount.Mount{Kind: mount.Fresh, Type: "devpts", Source: "devpts", Target: "/dev/pts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: pts},
		mount.Mount{Kind: mount.Symlink, Source: "pts/ptmx", Target: "/dev/ptmx"},
		mount.Mount{Kind: mount.Fresh, Type: "tmpfs", Source: "shm", Target: "/dev/shm", Flags: nosuidNodevNoexec, Data: "mode=1777,size=65536k"},
		mount.Mount{Kind: mount.Fresh, Type: "mqueue", Source: "mqueue", Target: "/dev/mqueue", Flags: nosuidNodevNoexec},
		mount.Mount{Kind: mount.Symlink, Source: "/proc/self/fd", Target: "/dev/fd"},
		mount.Mount{Kind: mount.Symlink, Source: "/proc/self/fd/0", Target: "/dev/stdin"},
		mount.Mount{Kind: mount.Symlink, Source: "/proc/self/fd/1", Target: "/dev/stdout"},
		mount.Mount{Kind: mount.Symlink, Source: "/proc/self/fd/2", Target: "/dev/stderr"},
	)
	for _, f := range EtcFiles(s) {
		p = append(p, mount.Mount{Kind: mount.Bind, Source: dir + "/" + f.Name, Target: f.Target, Flags: unix.MS_BIND})
	}
	for _, m := range s.Mounts {
		if m.Tmpfs && path.IsAbs(m.Target) && path.Clean(m.Target) != "/" {
			uid, gid := 0, 0
			if a := s.Account; a != nil {
				uid, gid = a.UID, a.GID
			}
			p = append(p, mount.Mount{Kind: mount.Fresh, Type: "tmpfs", Source: "tmpfs", Target: path.Clean(m.Target),
				Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: fmt.Sprintf("mode=0700,uid=%d,gid=%d,size=65536k", uid, gid)})
			continue
		}
		if !path.IsAbs(m.Source) {
			return nil, fmt.Errorf("mount source %q is not an absolute path", m.Source)
		}
		if !path.IsAbs(m.Target) {
			return nil, fmt.Errorf("mount target %q is not an absolute path", m.Target)
		}
		if path.Clean(m.Target) == "/" {
			return nil, fmt.Errorf("mount target %q: cannot mount over the box's root", m.Target)
		}
		f := uintptr(unix.MS_BIND | unix.MS_REC)
		if m.ReadOnly {
			f |= unix.MS_RDONLY
		}
		bm := mount.Mount{Kind: mount.Bind, Source: m.Source, Target: path.Clean(m.Target), Flags: f, Optional: m.Optional}
		if m.Ino != 0 {
			bm.Ident = &mount.Ident{Dev: m.Dev, Ino: m.Ino}
		}
		p = append(p, bm)
	}
	p = append(p, mount.Mount{Kind: mount.Pivot, Target: "/"})
	for _, t := range maskedPaths {
		p = append(p, mount.Mount{Kind: mount.Mask, Source: "/dev/null", Target: t})
	}
	for _, t := range readOnlyPaths {
		p = append(p, mount.Mount{Kind: mount.ReadOnly, Target: t})
	}
	return p, nil
}

// EtcFile is a file the init writes into ContainerDir for the box's /etc.
type EtcFile struct {
	Name    string // in ContainerDir
	Target  string // in the box
	Content string
}

// EtcFiles returns the contents of the box's /etc/hosts, /etc/hostname and
// /etc/resolv.conf. An empty s.Hosts gets the loopback lines and the
// hostname.
func EtcFiles(s *Spec) []EtcFile {
	hosts := s.Hosts
	if hosts == "" {
		hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		if s.Hostname != "" {
			hosts += "127.0.1.1\t" + s.Hostname + "\n"
		}
	}
	return []EtcFile{
		{"hosts", "/etc/hosts", withNewline(hosts)},
		{"hostname", "/etc/hostname", withNewline(s.Hostname)},
		{"resolv.conf", "/etc/resolv.conf", withNewline(s.ResolvConf)},
	}
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}
