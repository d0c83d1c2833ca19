package main

// probe dump [NS=LINK…]: everything a process in the box inherited or can
// observe of its confinement, as "SECTION: line" lines with whatever varies
// from one box to the next (mount ids, anonymous device numbers, peer
// groups, pipe and socket inodes, key serials, the box id, pids of the
// host) replaced by stable names, so that two boxes started the same way
// print the same text (test/integration/warm_test.go compares a cold start
// with a warm one). The arguments are the host's namespace links
// ("user=user:[4026531837]"): the dump says for each of the box's whether it
// is the host's. It only reads, except at the very end, where it tries
// calls the box should refuse and prints their errno.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dumper numbers what varies between boxes in order of first appearance,
// and writes the dump to w.
type dumper struct {
	names map[string]map[string]string
	w     io.Writer
}

// name is the stable name of value v in class c ("m3" for the third
// mount id seen, say).
func (d *dumper) name(c, v string) string {
	m := d.names[c]
	if m == nil {
		m = map[string]string{}
		d.names[c] = m
	}
	n, ok := m[v]
	if !ok {
		n = c + strconv.Itoa(len(m)+1)
		m[v] = n
	}
	return n
}

func (d *dumper) out(section, format string, a ...any) {
	fmt.Fprintf(d.w, "%s: %s\n", section, fmt.Sprintf(format, a...))
}

func dump(hostNS []string) {
	d := &dumper{names: map[string]map[string]string{}, w: os.Stdout}
	// First, before the Go runtime's poller opens anything: the
	// descriptors the command was given.
	d.fds()
	d.proc()
	d.init()
	d.mounts()
	d.namespaces(hostNS)
	d.files()
	d.network()
	d.dev()
	d.masks()
	d.keyring()
	d.refused()
}

// fds lists the open descriptors with raw system calls (os.Open would
// start the runtime's poller, which takes descriptors of its own).
func (d *dumper) fds() {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		d.out("fd", "open /proc/self/fd: %v", err)
		return
	}
	var nums []int
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(dir, buf)
		if err != nil || n <= 0 {
			break
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, s := range names {
			if fd, err := strconv.Atoi(s); err == nil && fd != dir {
				nums = append(nums, fd)
			}
		}
	}
	slices.Sort(nums)
	for _, fd := range nums {
		lb := make([]byte, 4096)
		n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), lb)
		link := ""
		if err != nil {
			link = err.Error()
		} else {
			link = d.kind(string(lb[:n]))
		}
		info := "?"
		if f, err := unix.Open("/proc/self/fdinfo/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			n, _ := unix.Read(f, buf)
			unix.Close(f)
			var keep []string
			for _, l := range strings.Split(string(buf[:max(n, 0)]), "\n") {
				// flags: the access mode, O_NONBLOCK, O_APPEND, close-on-exec.
				if strings.HasPrefix(l, "flags:") || strings.HasPrefix(l, "pos:") {
					keep = append(keep, strings.Join(strings.Fields(l), " "))
				}
			}
			info = strings.Join(keep, " ")
		}
		d.out("fd", "%d %s %s", fd, link, info)
	}
	unix.Close(dir)
}

// kind names a descriptor's target without the inode numbers of pipes and
// sockets: what matters is which descriptors share one.
func (d *dumper) kind(link string) string {
	for _, k := range []string{"pipe", "socket"} {
		if strings.HasPrefix(link, k+":[") {
			return d.name(k, link)
		}
	}
	return link
}

// statusKeys: not State (running or sleeping as it reads), not SigQ
// (signals queued for the user anywhere), not SigPnd or ShdPnd (the Go
// runtime preempts this very program with SIGURG, which may be pending as
// it reads: a cold start against itself differed in the systemd guest).
var statusKeys = []string{"Umask", "Uid", "Gid", "FDSize", "Groups", "NSpid", "NSpgid", "NSsid",
	"SigBlk", "SigIgn", "SigCgt", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
	"NoNewPrivs", "Seccomp", "Seccomp_filters", "Speculation_Store_Bypass", "SpeculationIndirectBranch",
	"Cpus_allowed_list", "Mems_allowed_list", "THP_enabled", "untag_mask", "x86_Thread_features"}

// proc: ids, confinement, limits and the other attributes of the process.
func (d *dumper) proc() {
	if f, err := os.Open("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			if !slices.Contains(statusKeys, k) {
				continue
			}
			v = strings.Join(strings.Fields(v), " ")
			if k == "NSpid" || k == "NSpgid" || k == "NSsid" {
				// The outer numbers are the host's, and the box's own
				// depends on how many threads the init started: only
				// the depth and whether the process leads its group
				// and session say anything.
				f := strings.Fields(v)
				v = fmt.Sprintf("depth %d, %s", len(f), d.pid(f[len(f)-1]))
			}
			d.out("status", "%s %s", k, v)
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// After the command name: state ppid pgrp session tty_nr tpgid
		// flags … nice (19) … rt_priority policy.
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 40 {
				d.out("stat", "ppid %s pgrp %s session %s tty %s tpgid %s", d.pid(f[1]), d.pid(f[2]), d.pid(f[3]), f[4], d.pid(f[5]))
				d.out("stat", "priority %s nice %s rt_priority %s policy %s", f[15], f[16], f[37], f[38])
			}
		}
	}
	cwd, err := os.Getwd()
	d.out("proc", "cwd %s %v", cwd, err)
	root, err := os.Readlink("/proc/self/root")
	d.out("proc", "root %s %v", root, err)
	exe, err := os.Readlink("/proc/self/exe")
	d.out("proc", "exe %s %v", exe, err)
	for _, f := range []string{"limits", "oom_score_adj", "loginuid", "sessionid",
		"attr/current", "autogroup", "setgroups", "uid_map", "gid_map", "timens_offsets", "coredump_filter"} {
		b, err := os.ReadFile("/proc/self/" + f)
		if err != nil {
			d.out("proc", "%s: %v", f, err)
			continue
		}
		s := strings.TrimRight(string(b), "\n\x00")
		if f == "autogroup" {
			// A new session is a new autogroup: its number is the host's.
			s = regexp.MustCompile(`autogroup-[0-9]+`).ReplaceAllString(s, "autogroup-N")
		}
		for _, l := range strings.Split(s, "\n") {
			d.out(f, "%s", strings.Join(strings.Fields(l), " "))
		}
	}
	env, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		d.out("environ", "%v", err)
	}
	for _, v := range strings.Split(strings.TrimRight(string(env), "\x00"), "\x00") {
		d.out("environ", "%q", v)
	}
	d.out("ids", "uid %d euid %d gid %d egid %d", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	groups, err := os.Getgroups()
	d.out("ids", "groups %v %v", groups, err)
	pers, _, _ := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	d.out("prctl", "personality %#x", pers)
	for _, p := range []struct {
		name string
		op   int
	}{{"dumpable", unix.PR_GET_DUMPABLE}, {"keepcaps", unix.PR_GET_KEEPCAPS}, {"securebits", unix.PR_GET_SECUREBITS},
		{"no_new_privs", unix.PR_GET_NO_NEW_PRIVS}, {"timerslack", unix.PR_GET_TIMERSLACK}, {"thp_disable", unix.PR_GET_THP_DISABLE},
		{"io_flusher", unix.PR_GET_IO_FLUSHER}, {"mdwe", 66 /* PR_GET_MDWE */}} {
		r, _, e := unix.Syscall6(unix.SYS_PRCTL, uintptr(p.op), 0, 0, 0, 0, 0)
		d.out("prctl", "%s %d %v", p.name, int(r), errnoErr(e))
	}
	var sig, sub int32
	_, _, e := unix.Syscall(unix.SYS_PRCTL, unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0)
	d.out("prctl", "pdeathsig %d %v", sig, errnoErr(e))
	_, _, e = unix.Syscall(unix.SYS_PRCTL, unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&sub)), 0)
	d.out("prctl", "child_subreaper %d %v", sub, errnoErr(e))
	for _, a := range []uintptr{unix.PR_SPEC_STORE_BYPASS, unix.PR_SPEC_INDIRECT_BRANCH, unix.PR_SPEC_L1D_FLUSH} {
		r, _, e := unix.Syscall6(unix.SYS_PRCTL, unix.PR_GET_SPECULATION_CTRL, a, 0, 0, 0, 0)
		d.out("prctl", "speculation %d: %#x %v", a, r, errnoErr(e))
	}
	io, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, 1 /* IOPRIO_WHO_PROCESS */, 0, 0)
	d.out("prctl", "ioprio %d %v", int(io), errnoErr(e))
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			d.out("cgroup", "%s", boxID.ReplaceAllString(l, "ID"))
		}
	}
	for _, l := range []int{unix.RLIMIT_NOFILE, unix.RLIMIT_NPROC, unix.RLIMIT_CORE, unix.RLIMIT_MEMLOCK, unix.RLIMIT_STACK} {
		var r unix.Rlimit
		err := unix.Getrlimit(l, &r)
		d.out("rlimit", "%d %d %d %v", l, r.Cur, r.Max, err)
	}
}

// pid names a pid of the box: 1 (its init) and this process's are
// themselves, others by order of appearance.
func (d *dumper) pid(p string) string {
	if p == "1" || p == "0" || p == "-1" {
		return p
	}
	if p == strconv.Itoa(os.Getpid()) {
		return "self"
	}
	return d.name("pid", p)
}

// initKeys are the lines of the init's /proc/1/status a box can read
// that do not change while it runs. Not the bounding set, no_new_privs and
// seccomp: they are its main thread's, which is the one that hardens
// itself to fork the command in some runs and not in others; nor the
// signals that thread blocks (all of them while the Go runtime forks).
var initKeys = []string{"Name", "Umask", "Uid", "Gid", "FDSize", "Groups", "NSpid", "NSpgid", "NSsid", "SigIgn", "SigCgt",
	"CapInh", "CapPrm", "CapEff", "CapAmb", "Cpus_allowed_list", "Mems_allowed_list"}

// init: what the box can see of its init (pid 1).
func (d *dumper) init() {
	if f, err := os.Open("/proc/1/status"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			if slices.Contains(initKeys, k) {
				d.out("init", "status %s %s", k, strings.Join(strings.Fields(v), " "))
			}
		}
		f.Close()
	} else {
		d.out("init", "status: %v", err)
	}
	if b, err := os.ReadFile("/proc/1/stat"); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 40 {
				d.out("init", "stat ppid %s pgrp %s session %s tty %s tpgid %s nice %s policy %s", f[1], d.pid(f[2]), d.pid(f[3]), f[4], d.pid(f[5]), f[16], f[38])
			}
		}
	}
	for _, f := range []string{"cmdline", "comm", "limits", "oom_score_adj", "cgroup", "environ", "fd"} {
		b, err := os.ReadFile("/proc/1/" + f)
		if f == "fd" {
			_, err = os.ReadDir("/proc/1/fd")
			b = nil
		}
		if err != nil {
			d.out("init", "%s: %v", f, err)
			continue
		}
		if f == "cmdline" {
			// The spec's descriptor and the box id vary.
			b = regexp.MustCompile(`fd:[0-9]+`).ReplaceAll(b, []byte("fd:N"))
		}
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n\x00"), "\n") {
			d.out("init", "%s: %s", f, boxID.ReplaceAllString(strings.Join(strings.Fields(strings.ReplaceAll(l, "\x00", " ")), " "), "ID"))
		}
	}
}

// boxID is what looks like a box id in a path (runtime/containers ids are
// 64 hex digits, a box's cgroup and runtime directory use a prefix).
var boxID = regexp.MustCompile(`[0-9a-f]{12,64}`)

// A mountinfo line, parsed.
type mount struct {
	id, parent, dev, root, at, opts string
	prop                            []string // optional fields: propagation
	fstype, source, super           string
}

// mounts prints mountinfo twice: "mount:" in its order (creation order),
// mount ids, parents, device numbers of anonymous file systems and peer
// groups by name in that order; and "mounttree:" depth first from the
// root, children by mount point (mounts stacked on one point in their
// order), each mount named by its place in the tree: the same for two
// tables that were built in another order.
func (d *dumper) mounts() {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		d.out("mount", "%v", err)
		return
	}
	d.mountinfo(b)
}

// mountinfo prints the mount table b (mountinfo's format).
func (d *dumper) mountinfo(b []byte) {
	var ms []mount
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		sep := slices.Index(f, "-")
		if len(f) < 7 || sep < 6 || len(f) < sep+3 {
			d.out("mount", "unparsed %q", l)
			continue
		}
		m := mount{id: f[0], parent: f[1], dev: f[2], root: boxID.ReplaceAllString(f[3], "ID"), at: boxID.ReplaceAllString(f[4], "ID"),
			opts: f[5], prop: f[6:sep], fstype: f[sep+1], source: boxID.ReplaceAllString(f[sep+2], "ID")}
		if len(f) > sep+3 {
			m.super = boxID.ReplaceAllString(f[sep+3], "ID")
		}
		ms = append(ms, m)
	}
	ids := map[string]bool{}
	for _, m := range ms {
		ids[m.id] = true
		d.name("m", m.id)
	}
	show := func(section, id, parent, devClass, peerClass string, m mount) {
		dev := m.dev
		if strings.HasPrefix(dev, "0:") {
			dev = d.name(devClass, dev)
		}
		var prop []string
		for _, o := range m.prop {
			if k, v, ok := strings.Cut(o, ":"); ok && (k == "shared" || k == "master" || k == "propagate_from") {
				o = k + ":" + d.name(peerClass, v)
			}
			prop = append(prop, o)
		}
		d.out(section, "%s parent %s dev %s root %s at %s %s [%s] %s %s %s", id, parent, dev, m.root, m.at, m.opts,
			strings.Join(prop, " "), m.fstype, m.source, m.super)
	}
	for _, m := range ms {
		parent := "outside"
		if ids[m.parent] && m.parent != m.id {
			parent = d.name("m", m.parent)
		}
		show("mount", d.name("m", m.id), parent, "anon", "peer", m)
	}
	// The tree: a mount's name is its parent's and its mount point's
	// place among the parent's children.
	children := map[string][]mount{}
	var roots []mount
	for _, m := range ms {
		if ids[m.parent] && m.parent != m.id {
			children[m.parent] = append(children[m.parent], m)
		} else {
			roots = append(roots, m)
		}
	}
	var walk func(parent string, ms []mount)
	walk = func(parent string, ms []mount) {
		slices.SortStableFunc(ms, func(a, b mount) int { return strings.Compare(a.at, b.at) })
		for i, m := range ms {
			name := parent + "/" + strconv.Itoa(i)
			show("mounttree", name, parent, "tdev", "tpeer", m)
			walk(name, children[m.id])
		}
	}
	walk("outside", roots)
}

// namespaces says for each namespace whether it is the host's (hostNS:
// "user=user:[N]" arguments) and which of them are one another's.
func (d *dumper) namespaces(hostNS []string) {
	host := map[string]string{}
	for _, a := range hostNS {
		if k, v, ok := strings.Cut(a, "="); ok {
			host[k] = v
		}
	}
	ents, err := os.ReadDir("/proc/self/ns")
	if err != nil {
		d.out("ns", "%v", err)
		return
	}
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/ns/" + e.Name())
		if err != nil {
			d.out("ns", "%s: %v", e.Name(), err)
			continue
		}
		h, known := host[e.Name()]
		same := "unknown"
		if known {
			same = strconv.FormatBool(h == l)
		}
		d.out("ns", "%s host's %s, inode %s", e.Name(), same, d.name("ns", l))
	}
}

// files: what devbox writes into every box, and the sysctls of its
// namespaces.
func (d *dumper) files() {
	for _, f := range []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/passwd", "/etc/group",
		"/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname",
		"/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/net/ipv4/ping_group_range",
		"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/all/rp_filter", "/proc/sys/net/ipv4/conf/default/rp_filter",
		"/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/user/max_user_namespaces",
		"/proc/sys/fs/mqueue/msg_max", "/proc/sys/kernel/shmmax", "/proc/sys/kernel/sem"} {
		b, err := os.ReadFile(f)
		if err != nil {
			d.out("file", "%s: %v", f, err)
			continue
		}
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if strings.HasPrefix(f, "/etc/") || strings.HasSuffix(f, "/hostname") {
				l = boxID.ReplaceAllString(l, "ID")
			}
			d.out("file", "%s: %s", f, l)
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		d.out("uname", "%s %s", unix.ByteSliceToString(u.Nodename[:]), unix.ByteSliceToString(u.Domainname[:]))
	}
	var um = unix.Umask(0)
	unix.Umask(um)
	d.out("proc", "umask %#o", um)
}

// network: the interfaces, their addresses and routes.
func (d *dumper) network() {
	ents, _ := os.ReadDir("/sys/class/net")
	for _, e := range ents {
		var vals []string
		for _, a := range []string{"operstate", "flags", "mtu", "address", "type", "tx_queue_len"} {
			b, err := os.ReadFile("/sys/class/net/" + e.Name() + "/" + a)
			if err != nil {
				vals = append(vals, a+"="+err.Error())
				continue
			}
			v := strings.TrimSpace(string(b))
			if a == "address" && e.Name() != "lo" {
				// A tap device's address is random.
				v = d.name("mac", v)
			}
			vals = append(vals, a+"="+v)
		}
		d.out("net", "%s %s", e.Name(), strings.Join(vals, " "))
		for _, s := range []string{"rp_filter", "forwarding", "accept_local"} {
			b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + e.Name() + "/" + s)
			d.out("net", "%s %s %s %v", e.Name(), s, strings.TrimSpace(string(b)), err)
		}
	}
	// Not IPv6 routes: a tap device's link-local address and its routes
	// come and change state while duplicate address detection runs, which
	// a probe may see half done.
	for _, f := range []string{"/proc/net/route", "/proc/net/if_inet6", "/proc/net/fib_trie"} {
		b, err := os.ReadFile(f)
		if err != nil {
			d.out("net", "%s: %v", f, err)
			continue
		}
		ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		for i, l := range ls {
			fs := strings.Fields(l)
			switch {
			case f == "/proc/net/route" && len(fs) > 5:
				// Not RefCnt and Use: counters.
				fs = slices.Delete(fs, 4, 6)
			case f == "/proc/net/if_inet6" && len(fs) == 6:
				// Not the flags (tentative while detection runs), and
				// the link-local address is made from the device's
				// random one.
				fs = slices.Delete(fs, 4, 5)
				fs[0] = linkLocal.ReplaceAllStringFunc(fs[0], func(a string) string { return d.name("linklocal", a) })
			}
			ls[i] = strings.Join(fs, " ")
		}
		if f == "/proc/net/if_inet6" {
			// Hash order, not the order the addresses were added in.
			slices.Sort(ls)
		}
		for _, l := range ls {
			d.out("net", "%s: %s", f, l)
		}
	}
}

var linkLocal = regexp.MustCompile(`\bfe80000000000000[0-9a-f]{16}\b`)

// dev lists /dev with modes, owners and device numbers.
func (d *dumper) dev() {
	filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			d.out("dev", "%s: %v", p, err)
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			d.out("dev", "%s: %v", p, err)
			return nil
		}
		link := ""
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			link, _ = os.Readlink(p)
			link = "-> " + link
		}
		rdev := ""
		if t := st.Mode & unix.S_IFMT; t == unix.S_IFCHR || t == unix.S_IFBLK {
			rdev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		d.out("dev", "%s %#o %d:%d %s%s", p, st.Mode, st.Uid, st.Gid, rdev, link)
		return nil
	})
}

// maskPaths are where a box's /proc and /sys are masked or read-only
// (docs/security.md), and some that are not.
var maskPaths = []string{"/proc/acpi", "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/kcore",
	"/proc/keys", "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/sys", "/proc/sysrq-trigger",
	"/proc/timer_list", "/proc/timer_stats", "/proc/kallsyms", "/proc/kmsg", "/proc/self/mem", "/sys/firmware",
	"/sys/fs/cgroup", "/sys/fs/selinux", "/sys/kernel", "/sys/devices/virtual/powercap", "/sys/class/net",
	"/proc/sys/kernel/core_pattern", "/proc/sys/net/ipv4/ping_group_range", "/sys/kernel/security"}

// masks: for each path its type, file system, read-only state and
// whether it can be read and written.
func (d *dumper) masks() {
	for _, p := range maskPaths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			d.out("mask", "%s: %v", p, err)
			continue
		}
		var sf unix.Statfs_t
		unix.Statfs(p, &sf)
		ro := unix.Access(p, unix.W_OK)
		rd := "dir"
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err == nil {
				n, err := unix.Read(fd, make([]byte, 1))
				rd = fmt.Sprintf("read %d %v", n, err)
				unix.Close(fd)
			} else {
				rd = "open " + err.Error()
			}
		} else if ents, err := os.ReadDir(p); err != nil {
			rd = "list " + err.Error()
		} else {
			rd = fmt.Sprintf("dir of %d", len(ents))
		}
		d.out("mask", "%s %#o fs %#x flags %#x write %v %s", p, st.Mode, sf.Type, sf.Flags, ro, rd)
	}
}

// keyring describes the session and user keyrings and the keys in them;
// serial numbers by name.
func (d *dumper) keyring() {
	for _, r := range []struct {
		name string
		id   int
	}{{"session", unix.KEY_SPEC_SESSION_KEYRING}, {"user", unix.KEY_SPEC_USER_KEYRING}, {"user-session", unix.KEY_SPEC_USER_SESSION_KEYRING}} {
		id, err := unix.KeyctlGetKeyringID(r.id, false)
		if err != nil {
			d.out("key", "%s: %v", r.name, err)
			continue
		}
		desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
		d.out("key", "%s %s %q %v", r.name, d.name("key", strconv.Itoa(id)), desc, err)
		buf := make([]byte, 4096)
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
		if err != nil {
			d.out("key", "%s read: %v", r.name, err)
			continue
		}
		for i := 0; i+4 <= min(n, len(buf)); i += 4 {
			k := int(int32(uint32(buf[i]) | uint32(buf[i+1])<<8 | uint32(buf[i+2])<<16 | uint32(buf[i+3])<<24))
			desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, k)
			d.out("key", "%s holds %s %q %v", r.name, d.name("key", strconv.Itoa(k)), desc, err)
		}
	}
}

// refused tries calls a box normally refuses (seccomp, capabilities) and
// prints their errno; last, as one could succeed. Each is harmless where it
// succeeds (it changes nothing, or this process only, or undoes itself),
// and none is tried outside a box (pid 1 not devbox's init): a probe run
// by hand as root on the host must not touch the host.
func (d *dumper) refused() {
	if b, _ := os.ReadFile("/proc/1/cmdline"); !bytes.HasPrefix(b, []byte("devbox-init\x00")) {
		d.out("refused", "not tried: pid 1 is not devbox-init")
		return
	}
	res := func(what string, err error) {
		if err == nil {
			d.out("refused", "%s: allowed", what)
			return
		}
		d.out("refused", "%s: %v", what, err)
	}
	_, err := unix.AddKey("user", "devbox-probe-dump", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
	res("add_key", err)
	_, err = unix.KeyctlJoinSessionKeyring("devbox-probe-dump")
	res("keyctl join", err)
	_, _, e := unix.Syscall(unix.SYS_PERSONALITY, 0x0008 /* ADDR_NO_RANDOMIZE without READ_IMPLIES_EXEC */, 0, 0)
	res("personality", errnoErr(e))
	// Tracing its own parent (the box's init or a shell): detached at once.
	if err := unix.PtraceSeize(os.Getppid()); err == nil {
		unix.PtraceDetach(os.Getppid())
		res("ptrace seize parent", nil)
	} else {
		res("ptrace seize parent", err)
	}
	dir, err := os.MkdirTemp("", "probe-dump-")
	if err == nil {
		err = unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4k")
		if err == nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
		os.Remove(dir)
	}
	res("mount tmpfs", err)
	res("remount /proc/kcore", unix.Mount("", "/proc/kcore", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""))
	host, _ := os.Hostname()
	res("sethostname (the same)", unix.Sethostname([]byte(host)))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err == nil {
		unix.Close(fd)
	}
	res("packet socket", err)
	fd, err = unix.Open("/proc/sysrq-trigger", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	res("open /proc/sysrq-trigger for writing", err)
	// Threads of a Go program cannot unshare a user namespace (EINVAL):
	// the others tell the filter and capabilities apart.
	for _, u := range []struct {
		name string
		flag int
	}{{"user", unix.CLONE_NEWUSER}, {"mount", unix.CLONE_NEWNS}, {"net", unix.CLONE_NEWNET}} {
		res("unshare "+u.name, unix.Unshare(u.flag))
	}
	_, _, e = unix.Syscall(unix.SYS_BPF, 0, 0, 0)
	res("bpf (no attributes)", errnoErr(e))
	_, _, e = unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0, 0)
	res("perf_event_open (no attributes)", errnoErr(e))
}
