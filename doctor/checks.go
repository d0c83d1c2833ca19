package doctor

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime/device"
)

const (
	sysctlMaxUserns   = "/proc/sys/user/max_user_namespaces"
	sysctlCloneUserns = "/proc/sys/kernel/unprivileged_userns_clone"
	sysctlAppArmor    = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
	appArmorProfile   = "/etc/apparmor.d/devbox"
)

// userns: the kernel lets an unprivileged user create user namespaces.
func (r *runner) userns() Result {
	res := Result{Check: "userns"}
	maxNS := r.readTrim(sysctlMaxUserns)
	clone := r.readTrim(sysctlCloneUserns)
	aa := r.readTrim(sysctlAppArmor)
	var probeErr error
	if r.Probe != nil {
		probeErr = r.Probe.Userns()
	}
	switch {
	case r.Probe != nil && probeErr == nil:
		r.usernsOK = true
		res.Status, res.Message = Pass, "user namespaces work"
		if maxNS != "" {
			res.Message += " (user.max_user_namespaces=" + maxNS + ")"
		}
		if aa == "1" {
			res.Message += "; AppArmor restricts them and a profile allows devbox"
		}
	case maxNS == "0":
		res.Status = Fail
		res.Message = "user namespaces are disabled: user.max_user_namespaces is 0"
		res.Hint = sysctlFix("user.max_user_namespaces", "28633")
	case clone == "0":
		res.Status = Fail
		res.Message = "unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone is 0"
		res.Hint = sysctlFix("kernel.unprivileged_userns_clone", "1")
	case aa == "1":
		ns := r.NSExe
		if ns == "" {
			ns = r.Exe
		}
		res.Status = Fail
		res.Message = "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1) and no profile allows " + ns
		if b, err := r.Host.ReadFile(appArmorProfile); err == nil && !strings.Contains(string(b), ns) {
			res.Message += " (" + appArmorProfile + " names another path: was devbox moved?)"
		}
		if probeErr != nil {
			res.Message += ": " + oneLine(probeErr.Error())
		}
		res.Hint = AppArmorFix(ns)
		if rt := r.Getenv("XDG_RUNTIME_DIR"); rt != "" && strings.HasPrefix(ns, rt+"/") {
			// A copy of the CLI in the user's runtime directory: a profile
			// naming it would give user namespaces to any program of the
			// user's placed there.
			res.Hint = "devbox runs its CLI from " + ns + ", a path of yours that a profile must not name: install devbox " +
				"from its .deb or .rpm package, which puts the CLI at /usr/libexec/devbox/devbox-cli, then run devbox doctor " +
				"again for the profile (or build devbox as one program: go build ./cmd/devbox)"
		}
	case probeErr != nil:
		res.Status = Fail
		res.Message = "creating a user namespace failed: " + oneLine(probeErr.Error())
		res.Hint = "inside a container, user namespaces must be allowed by it (podman: --security-opt seccomp=unconfined " +
			"--security-opt apparmor=unconfined; docker: a seccomp profile that allows unshare and clone); " +
			"on a host, check `dmesg` and the sysctls user.max_user_namespaces and kernel.unprivileged_userns_clone"
	default:
		r.usernsOK = true
		res.Status, res.Message = Pass, "the kernel's settings allow user namespaces (not tried)"
	}
	return res
}

func sysctlFix(key, val string) string {
	return fmt.Sprintf("sudo sysctl -w %s=%s\necho %s=%s | sudo tee /etc/sysctl.d/90-devbox-userns.conf", key, val, key, val)
}

// AppArmorFix is the profile that lets the devbox binary at exe create user
// namespaces on hosts where AppArmor restricts them (Ubuntu 23.10 and
// later), with the commands that install it.
func AppArmorFix(exe string) string {
	attach := exe
	if strings.ContainsAny(exe, " \t\"") {
		attach = strconv.Quote(exe)
	}
	return "sudo tee " + appArmorProfile + " >/dev/null <<'EOF'\n" +
		"abi <abi/4.0>,\n" +
		"include <tunables/global>\n" +
		"\n" +
		"profile devbox " + attach + " flags=(unconfined) {\n" +
		"  userns,\n" +
		"}\n" +
		"EOF\n" +
		"sudo apparmor_parser -r " + appArmorProfile
}

// Capability numbers (linux/capability.h).
const (
	capSetgid = 6
	capSetuid = 7
)

// newuidmap: the setuid helpers that write a namespace's id maps.
func (r *runner) newuidmap() Result {
	res := Result{Check: "newuidmap"}
	var ok, missing, weak, nosuid []string
	for _, t := range []struct {
		name string
		cap  uint
	}{{"newuidmap", capSetuid}, {"newgidmap", capSetgid}} {
		path, err := r.Host.LookPath(t.name)
		if err != nil {
			missing = append(missing, t.name)
			continue
		}
		how, good := r.privileged(path, t.cap)
		switch {
		case !good:
			weak = append(weak, path)
		case r.mountedNosuid(path):
			nosuid = append(nosuid, path)
		default:
			ok = append(ok, path+" ("+how+")")
		}
	}
	switch {
	case len(missing) > 0:
		res.Status = Fail
		if r.Mapping.Single() {
			// Without subordinate ids devbox maps only the caller and
			// does not run the helpers.
			res.Status = Warn
		}
		res.Message = strings.Join(missing, " and ") + " not found: devbox needs them to map your subordinate ids"
		res.Hint = "sudo apt install uidmap    # Fedora, RHEL: sudo dnf install shadow-utils; Arch: sudo pacman -S shadow; openSUSE: sudo zypper install shadow"
	case len(weak) > 0:
		res.Status = Fail
		res.Message = strings.Join(weak, " and ") + " is neither setuid root nor has the file capability (cap_setuid/cap_setgid) it needs"
		res.Hint = "sudo chmod u+s " + strings.Join(weak, " ")
	case len(nosuid) > 0:
		res.Status = Fail
		res.Message = strings.Join(nosuid, " and ") + " is on a filesystem mounted nosuid, so its privilege is ignored"
		res.Hint = "install uidmap on a filesystem without nosuid (the root filesystem), or remount it: sudo mount -o remount,suid " + filepath.Dir(nosuid[0])
	default:
		res.Status, res.Message = Pass, strings.Join(ok, ", ")
	}
	return res
}

// privileged reports how the helper at path gets its privilege.
func (r *runner) privileged(path string, want uint) (string, bool) {
	fi, err := r.Host.Stat(path)
	if err != nil {
		return "", false
	}
	if fi.Mode&fs.ModeSetuid != 0 && fi.UID == 0 {
		return "setuid root", true
	}
	b, err := r.Host.Getxattr(path, "security.capability")
	if err != nil {
		return "", false
	}
	perm, eff, ok := ParseFileCaps(b)
	if ok && eff && perm&(1<<want) != 0 {
		name := map[uint]string{capSetuid: "cap_setuid", capSetgid: "cap_setgid"}[want]
		return "file capability " + name, true
	}
	return "", false
}

func (r *runner) mountedNosuid(path string) bool {
	st, err := r.Host.Statfs(path)
	return err == nil && st.Flags&stNosuid != 0
}

// ParseFileCaps decodes a security.capability extended attribute
// (struct vfs_cap_data, revisions 1 to 3): the permitted set and whether the
// capabilities are raised into the effective set at exec.
func ParseFileCaps(b []byte) (permitted uint64, effective, ok bool) {
	if len(b) < 4 {
		return 0, false, false
	}
	magic := binary.LittleEndian.Uint32(b)
	effective = magic&0x1 != 0
	switch magic & 0xff000000 {
	case 0x01000000:
		if len(b) < 12 {
			return 0, false, false
		}
		return uint64(binary.LittleEndian.Uint32(b[4:])), effective, true
	case 0x02000000, 0x03000000:
		if len(b) < 20 {
			return 0, false, false
		}
		lo := uint64(binary.LittleEndian.Uint32(b[4:]))
		hi := uint64(binary.LittleEndian.Uint32(b[12:]))
		return lo | hi<<32, effective, true
	}
	return 0, false, false
}

// subids: the caller's subordinate id ranges.
func (r *runner) subids() Result {
	res := Result{Check: "subids"}
	m := r.Mapping
	switch {
	case r.MappingErr != nil:
		res.Status = Fail
		res.Message, res.Hint = SplitHint(oneLine(r.MappingErr.Error()))
		return res
	case r.UID == 0:
		res.Status = Warn
		res.Message = "running as root: devbox is made for unprivileged users; as root, boxes map root only"
		res.Hint = "run devbox as your own user"
		return res
	}
	entries := r.subidEntries("/etc/subuid")
	free := freeRange(append(entries, r.subidEntries("/etc/subgid")...))
	fix := fmt.Sprintf("sudo usermod --add-subuids %d-%d --add-subgids %d-%d %s", free, free+65535, free, free+65535, r.User)
	if m.Single() {
		res.Status = Warn
		res.Message = fmt.Sprintf("no subordinate id range for %s in /etc/subuid and /etc/subgid: only your own uid is mapped, "+
			"so image files of other owners (daemons, nobody) belong to you in boxes", r.User)
		res.Hint = fix
		return res
	}
	res.Status = Pass
	res.Message = "subuid " + fmtRanges(m.SubUIDs) + "; subgid " + fmtRanges(m.SubGIDs)
	if !hasOwner(entries, r.User, r.UID) {
		res.Message += " (from getsubids, not /etc/subuid)"
	}
	if n := min(total(m.SubUIDs), total(m.SubGIDs)); n < 65535 {
		res.Status = Warn
		res.Message += fmt.Sprintf(": only %d ids, images with ids up to 65534 (nobody) need 65535 or more", n)
		res.Hint = fix
		return res
	}
	if other := overlapping(entries, m.SubUIDs, r.User, r.UID); other != "" {
		res.Status = Warn
		res.Message += "; the range overlaps the one of " + other + ", who can then read and change your boxes' files"
		res.Hint = "give each user a range of their own in /etc/subuid and /etc/subgid, e.g. " + fix
	}
	return res
}

type subidEntry struct {
	owner         string
	start, length int
}

func (r *runner) subidEntries(path string) []subidEntry {
	b, err := r.Host.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []subidEntry
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		s, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || s < 0 || n <= 0 {
			continue
		}
		out = append(out, subidEntry{f[0], s, n})
	}
	return out
}

func hasOwner(es []subidEntry, user string, uid int) bool {
	for _, e := range es {
		if e.owner == user || e.owner == strconv.Itoa(uid) {
			return true
		}
	}
	return false
}

// overlapping names another owner whose range overlaps ours.
func overlapping(es []subidEntry, ours []rootless.Range, user string, uid int) string {
	for _, e := range es {
		if e.owner == user || e.owner == strconv.Itoa(uid) {
			continue
		}
		for _, o := range ours {
			if e.start < o.Start+o.Length && o.Start < e.start+e.length {
				return e.owner
			}
		}
	}
	return ""
}

// freeRange returns the start of a 65536-id range, at or above 100000 and
// aligned to 65536, that no entry uses.
func freeRange(es []subidEntry) int {
	start := 100000
	sort.Slice(es, func(i, j int) bool { return es[i].start < es[j].start })
	for moved := true; moved; {
		moved = false
		for _, e := range es {
			if e.start < start+65536 && start < e.start+e.length {
				start = (e.start + e.length + 65535) / 65536 * 65536
				moved = true
			}
		}
	}
	return start
}

func fmtRanges(rs []rootless.Range) string {
	parts := make([]string, len(rs))
	for i, x := range rs {
		parts[i] = fmt.Sprintf("%d-%d", x.Start, x.Start+x.Length-1)
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (%d ids)", total(rs))
}

func total(rs []rootless.Range) int {
	n := 0
	for _, x := range rs {
		n += x.Length
	}
	return n
}

// runtimeDir: XDG_RUNTIME_DIR is the caller's private session directory.
func (r *runner) runtimeDir() Result {
	res := Result{Check: "runtime-dir"}
	dir := r.getenv("XDG_RUNTIME_DIR")
	own := fmt.Sprintf("/run/user/%d", r.UID)
	session := fmt.Sprintf("log in as %s directly (desktop, console or ssh), or run: machinectl shell %s@\n"+
		"(su and sudo start no login session; sudo -iu %s works only from inside one)", r.User, r.User, r.User)
	switch {
	case dir == "":
		res.Status = Warn
		res.Message = fmt.Sprintf("XDG_RUNTIME_DIR is not set (a shell started by su or sudo has no login session): running boxes keep their sockets in /tmp/devbox-%d instead", r.UID)
		res.Hint = session + fmt.Sprintf("\nwithout a login: sudo loginctl enable-linger %s && export XDG_RUNTIME_DIR=%s", r.User, own)
		return res
	case !filepath.IsAbs(dir):
		res.Status = Fail
		res.Message = fmt.Sprintf("XDG_RUNTIME_DIR=%q is not an absolute path", dir)
		res.Hint = "export XDG_RUNTIME_DIR=" + own
		return res
	}
	fi, err := r.Host.Stat(dir)
	switch {
	case err != nil:
		res.Status = Fail
		res.Message = fmt.Sprintf("XDG_RUNTIME_DIR=%s does not exist: %v", dir, unwrapPath(err))
		res.Hint = session + fmt.Sprintf("\nwithout a login: sudo loginctl enable-linger %s", r.User)
	case !fi.Mode.IsDir():
		res.Status = Fail
		res.Message = fmt.Sprintf("XDG_RUNTIME_DIR=%s is not a directory", dir)
		res.Hint = session
	case fi.UID != r.UID:
		res.Status = Fail
		res.Message = fmt.Sprintf("XDG_RUNTIME_DIR=%s belongs to uid %d, not to you (uid %d): su or sudo kept another user's session environment", dir, fi.UID, r.UID)
		res.Hint = session
	case fi.Mode.Perm() != 0o700:
		res.Status = Warn
		res.Message = fmt.Sprintf("XDG_RUNTIME_DIR=%s has mode %04o; other users may reach your boxes' sockets", dir, fi.Mode.Perm())
		res.Hint = "chmod 0700 " + dir
	default:
		res.Status, res.Message = Pass, dir+" (yours, mode 0700)"
	}
	if res.Status == Fail && dir != own {
		if fi, err := r.Host.Stat(own); err == nil && fi.UID == r.UID && fi.Mode.IsDir() {
			res.Hint += "\nor, in this shell: export XDG_RUNTIME_DIR=" + own
		}
	}
	return res
}

// overlay: overlayfs can be mounted in the keep-id user namespace.
func (r *runner) overlay() Result {
	res := Result{Check: "overlay"}
	kernel := r.readTrim("/proc/sys/kernel/osrelease")
	recent := kernelAtLeast(kernel, 5, 11)
	parent := r.probeDir()
	fsName := fsTypeName(r.fsType(parent))
	switch {
	case !r.usernsOK:
		res.Status, res.Message = Warn, "not tried: user namespaces do not work (see userns)"
		return res
	case r.Probe == nil:
		if recent {
			res.Status, res.Message = Pass, "Linux "+kernel+" mounts overlayfs in user namespaces (not tried)"
		} else {
			res.Status, res.Message = Warn, "Linux "+kernel+" is older than 5.11 and cannot mount overlayfs in a user namespace"
			res.Hint = "upgrade the kernel to 5.11 or later; until then devbox uses fuse-overlayfs: sudo apt install fuse-overlayfs"
		}
		return res
	}
	if err := r.Probe.Overlay(parent); err != nil {
		res.Status = Warn
		res.Message = fmt.Sprintf("mounting overlayfs (userxattr) in the user namespace failed on %s (%s): %s; boxes fall back to fuse-overlayfs or a copy",
			parent, fsName, oneLine(err.Error()))
		if !recent {
			res.Hint = "Linux " + kernel + " is older than 5.11: upgrade the kernel; meanwhile: sudo apt install fuse-overlayfs"
		} else {
			res.Hint = fmt.Sprintf("keep the store on a local ext4, xfs or btrfs filesystem: devbox --store DIR, DEVBOX_STORE=DIR, or [store] root in %s", r.configPath())
		}
		return res
	}
	r.overlayOK = true
	res.Status = Pass
	res.Message = fmt.Sprintf("overlayfs mounts in the user namespace with userxattr (tried on %s, %s)", parent, fsName)
	return res
}

// probeDir is where the overlay is tried: the store's own filesystem when
// the store exists.
func (r *runner) probeDir() string {
	if r.StoreRoot != "" {
		tmp := filepath.Join(r.StoreRoot, "tmp")
		if fi, err := r.Host.Stat(tmp); err == nil && fi.Mode.IsDir() {
			return tmp
		}
	}
	if d := r.getenv("TMPDIR"); d != "" {
		return d
	}
	return "/tmp"
}

// fuseOverlayfs: the fallback when the kernel's overlayfs cannot be used.
func (r *runner) fuseOverlayfs() Result {
	res := Result{Check: "fuse-overlayfs"}
	bin, binErr := r.Host.LookPath("fuse-overlayfs")
	devErr := r.charDevice("/dev/fuse")
	switch {
	case binErr == nil && devErr == nil:
		res.Status, res.Message = Pass, bin+" and /dev/fuse are available as a fallback"
	case r.overlayOK:
		res.Status = Pass
		res.Message = "not needed: overlayfs works"
		if binErr != nil {
			res.Message += " (fuse-overlayfs is not installed)"
		} else {
			res.Message += " (/dev/fuse: " + devErr.Error() + ")"
		}
	case binErr != nil:
		res.Status = Warn
		res.Message = "fuse-overlayfs is not installed: without overlayfs, boxes are made by copying the image (slower, more disk)"
		res.Hint = "sudo apt install fuse-overlayfs    # Fedora: sudo dnf install fuse-overlayfs"
	default:
		res.Status = Warn
		res.Message = "/dev/fuse: " + devErr.Error() + ": fuse-overlayfs cannot work, boxes are made by copying the image"
		res.Hint = "sudo modprobe fuse && sudo chmod 0666 /dev/fuse"
	}
	return res
}

// charDevice checks that path is a character device the caller can open
// for reading and writing.
func (r *runner) charDevice(path string) error {
	fi, err := r.Host.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("missing")
	case fi.Mode&fs.ModeCharDevice == 0:
		return fmt.Errorf("not a character device")
	case r.Host.Access(path, 6) != nil:
		return fmt.Errorf("not readable and writable by you (mode %04o)", fi.Mode.Perm())
	}
	return nil
}

// filesystem: the store and the home directory are on filesystems that can
// hold box files.
func (r *runner) filesystem() Result {
	res := Result{Check: "filesystem"}
	store := r.nearestExisting(r.StoreRoot)
	sfs, serr := r.Host.Statfs(store)
	hfs, herr := r.Host.Statfs(r.Home)
	// Never a predictable name in a shared directory: another user could
	// make it first (docs/security.md, "Records and the store").
	move := fmt.Sprintf("keep the store on a local disk, in a new private directory: mktemp -d /var/tmp/devbox-store.XXXXXXXXXX (mktemp makes it 0700 and never reuses one), then set root = \"<the path it printed>\" under [store] in %s (or DEVBOX_STORE, or --store)",
		r.configPath())
	if serr != nil {
		res.Status, res.Message = Warn, fmt.Sprintf("cannot inspect the filesystem of the store %s: %v", r.StoreRoot, unwrapPath(serr))
		return res
	}
	sname := fsTypeName(sfs.Type)
	var notes []string
	switch sfs.Type {
	case magicNFS, magicCIFS, magicSMB2:
		res.Status = Fail
		res.Message = fmt.Sprintf("the store %s is on %s: files cannot be owned by your subordinate ids there, so pulls fail", r.StoreRoot, sname)
		res.Hint = move
		return res
	case magicFUSE, magicEcryptfs:
		res.Status = Warn
		notes = append(notes, fmt.Sprintf("the store %s is on %s, which may not keep file owners and extended attributes", r.StoreRoot, sname))
		res.Hint = move
	}
	if sfs.Flags&stNoexec != 0 {
		res.Status = Warn
		notes = append(notes, fmt.Sprintf("the store %s is mounted noexec: programs of boxes made by copying cannot run", r.StoreRoot))
		res.Hint = move
	}
	if herr == nil {
		switch {
		case hfs.Type == magicNFS || hfs.Type == magicCIFS || hfs.Type == magicSMB2:
			notes = append(notes, fmt.Sprintf("your home %s is on %s (bound into boxes as it is; the store is on %s)", r.Home, fsTypeName(hfs.Type), sname))
		case hfs.Flags&stNoexec != 0:
			res.Status = Warn
			notes = append(notes, fmt.Sprintf("your home %s is mounted noexec: programs in it cannot run in boxes either", r.Home))
			if res.Hint == "" {
				res.Hint = "remount your home without noexec, or keep programs outside it"
			}
		}
	}
	if res.Status == "" {
		res.Status = Pass
		notes = append([]string{fmt.Sprintf("store on %s", sname)}, notes...)
		if herr == nil && len(notes) == 1 {
			notes[0] += fmt.Sprintf(", home on %s", fsTypeName(hfs.Type))
		}
	}
	res.Message = strings.Join(notes, "; ")
	return res
}

func (r *runner) fsType(path string) int64 {
	st, err := r.Host.Statfs(r.nearestExisting(path))
	if err != nil {
		return 0
	}
	return st.Type
}

func fsTypeName(t int64) string {
	switch t {
	case 0xef53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x2fc12fc1:
		return "zfs"
	case magicTmpfs:
		return "tmpfs"
	case magicOverlay:
		return "overlayfs"
	case magicNFS:
		return "NFS"
	case magicCIFS, magicSMB2:
		return "SMB/CIFS"
	case magicFUSE:
		return "a FUSE filesystem"
	case 0x9fa0:
		return "procfs"
	case 0x62656572:
		return "sysfs"
	case magicEcryptfs:
		return "eCryptfs"
	case 0:
		return "an unknown filesystem"
	}
	return fmt.Sprintf("filesystem type %#x", t)
}

// cgroupInfo reports the cgroup mode ("v2", "hybrid", "v1" or "none"), and
// for v2 the cgroup delegated to the caller ("" when none) with its
// controllers.
func (r *runner) cgroupInfo() (mode, own, dir string, ctrls []string) {
	root, err := r.Host.Statfs("/sys/fs/cgroup")
	switch {
	case err != nil:
		return "none", "", "", nil
	case root.Type != magicCgroup2:
		if u, err := r.Host.Statfs("/sys/fs/cgroup/unified"); err == nil && u.Type == magicCgroup2 {
			return "hybrid", "", "", nil
		}
		return "v1", "", "", nil
	}
	own = ownCgroup(r.readTrim("/proc/self/cgroup"))
	svc := fmt.Sprintf("/sys/fs/cgroup/user.slice/user-%d.slice/user@%d.service", r.UID, r.UID)
	if fi, err := r.Host.Stat(svc); err == nil && fi.Mode.IsDir() {
		dir = svc
	} else if own != "" {
		p := filepath.Join("/sys/fs/cgroup", own)
		if fi, err := r.Host.Stat(p); err == nil && fi.UID == r.UID {
			dir = p
		}
	}
	if dir != "" {
		ctrls = strings.Fields(r.readTrim(filepath.Join(dir, "cgroup.controllers")))
	}
	return "v2", own, dir, ctrls
}

// cgroup: cgroup v2 with controllers delegated to the user, for limits.
func (r *runner) cgroup() Result {
	res := Result{Check: "cgroup"}
	grub := "add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, then:\n" +
		"sudo update-grub    # Fedora: sudo grub2-mkconfig -o /boot/grub2/grub.cfg\n" +
		"sudo reboot"
	mode, own, dir, ctrls := r.cgroupInfo()
	switch mode {
	case "none":
		res.Status, res.Message = Warn, "no cgroup filesystem at /sys/fs/cgroup: resource limits (--memory, --cpus, --pids-limit) are unavailable"
		res.Hint = "mount cgroup2 on /sys/fs/cgroup (systemd does this at boot)"
		return res
	case "hybrid", "v1":
		what := "cgroup v1"
		if mode == "hybrid" {
			what = "hybrid cgroups (v1 controllers, an empty v2 tree at /sys/fs/cgroup/unified)"
		}
		res.Status = Warn
		res.Message = what + ": devbox needs cgroup v2 for resource limits (--memory, --cpus, --pids-limit); boxes run without limits"
		res.Hint = grub
		return res
	}
	delegate := "sudo mkdir -p /etc/systemd/system/user@.service.d\n" +
		"printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf\n" +
		"sudo systemctl daemon-reload    # then log out and in again"
	if dir == "" {
		res.Status = Warn
		res.Message = fmt.Sprintf("cgroup v2, but no cgroup is delegated to you (yours is %s, not owned by you, and there is no user@%d.service): resource limits are unavailable", orRoot(own), r.UID)
		res.Hint = "log in through a systemd session (desktop, console, ssh, or machinectl shell " + r.User + "@); if you do:\n" + delegate
		return res
	}
	var missing []string
	for _, c := range []string{"cpu", "io", "memory", "pids"} {
		if !contains(ctrls, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		res.Status = Warn
		res.Message = fmt.Sprintf("cgroup v2, but %s not delegated to you in %s (delegated: %s): the limits they enforce are unavailable",
			strings.Join(missing, ", "), dir, orNone(ctrls))
		res.Hint = delegate
		return res
	}
	res.Status, res.Message = Pass, "cgroup v2, delegated controllers in "+dir+": "+strings.Join(ctrls, " ")
	if r.getenv("DBUS_SESSION_BUS_ADDRESS") != "" || r.getenv("XDG_RUNTIME_DIR") != "" {
		res.Message += "; " + r.boxCgroups(own)
	}
	return res
}

// boxCgroups says where boxes started from this session get their cgroup
// on a systemd host (cgroup.Decide): inside the user manager, below the
// one delegated devbox.scope; outside it (an ssh or console login's
// session scope, from which nothing can be moved into the manager's
// tree), a scope of their own each, one D-Bus call per box.
func (r *runner) boxCgroups(own string) string {
	mgr := fmt.Sprintf("/user.slice/user-%d.slice/user@%d.service", r.UID, r.UID)
	if own != mgr && !strings.HasPrefix(own, mgr+"/") {
		return "boxes started from this session (outside your user manager: an ssh or console login) get a systemd scope each, one D-Bus call per box; from a desktop terminal they share " + cgroup.SharedScope
	}
	scope := mgr + "/app.slice/" + cgroup.SharedScope
	if keeper := strings.Fields(r.readTrim(filepath.Join("/sys/fs/cgroup", scope, cgroup.KeeperLeaf, "cgroup.procs"))); len(keeper) > 0 {
		return "boxes get a cgroup in " + scope + " (kept by pid " + keeper[0] + ")"
	}
	return "boxes will get a cgroup in " + scope + ", made at the first box"
}

// ownCgroup returns the cgroup v2 path of /proc/self/cgroup ("0::/path").
func ownCgroup(procSelfCgroup string) string {
	for line := range strings.SplitSeq(procSelfCgroup, "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			return p
		}
	}
	return ""
}

// dbus: a user session bus, through which systemd gives boxes a cgroup.
func (r *runner) dbus() Result {
	res := Result{Check: "dbus"}
	addr := r.getenv("DBUS_SESSION_BUS_ADDRESS")
	var socket, other string
	for a := range strings.SplitSeq(addr, ";") {
		if p := busPath(a); p != "" && socket == "" {
			socket = p
		} else if a != "" && other == "" {
			other = a
		}
	}
	if socket == "" && other == "" {
		if rt := r.getenv("XDG_RUNTIME_DIR"); rt != "" {
			if fi, err := r.Host.Stat(filepath.Join(rt, "bus")); err == nil && fi.Mode&fs.ModeSocket != 0 {
				socket = filepath.Join(rt, "bus")
			}
		}
	}
	fix := "sudo apt install dbus-user-session    # Fedora and Arch have it\n" +
		"then log out and in again (without a login: sudo loginctl enable-linger " + r.User + ")"
	switch {
	case socket != "":
		if err := r.Host.Dial(socket); err != nil {
			res.Status = Warn
			res.Message = fmt.Sprintf("the user bus %s does not answer (%v): devbox cannot ask systemd for a box cgroup, resource limits may be unavailable", socket, unwrapPath(err))
			res.Hint = "systemctl --user start dbus.socket    # or log out and in again"
			return res
		}
		res.Status, res.Message = Pass, "user bus at "+socket
	case other != "":
		res.Status, res.Message = Pass, "user bus at "+other+" (not tried)"
	default:
		res.Status = Warn
		res.Message = "no user D-Bus session (DBUS_SESSION_BUS_ADDRESS unset, no $XDG_RUNTIME_DIR/bus): devbox cannot ask systemd for a box cgroup, resource limits may be unavailable"
		res.Hint = fix
	}
	return res
}

// busPath extracts the socket of a "unix:path=…" D-Bus address.
func busPath(addr string) string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(addr), "unix:")
	if !ok {
		return ""
	}
	for kv := range strings.SplitSeq(rest, ",") {
		if p, ok := strings.CutPrefix(kv, "path="); ok {
			return p
		}
	}
	return ""
}

// network: what gives a box its own network. The default, --net slirp,
// uses devbox's built-in gvisor driver when nothing else is installed;
// every user-mode driver needs /dev/net/tun (docs/network.md).
func (r *runner) network() Result {
	res := Result{Check: "network"}
	have := []string{"built-in gvisor driver"}
	for _, h := range []string{"pasta", "slirp4netns"} {
		if p, err := r.Host.LookPath(h); err == nil {
			have = append(have, h+" ("+p+")")
		}
	}
	switch tunErr := r.charDevice("/dev/net/tun"); {
	case tunErr != nil:
		res.Status = Warn
		res.Message = "/dev/net/tun: " + tunErr.Error() + ": boxes cannot get their default user-mode network (--net slirp); --net host and --net none work"
		res.Hint = "sudo modprobe tun && sudo chmod 0666 /dev/net/tun\n# or make host networking the default: [network] mode = \"host\" in " + r.ConfigPath
	default:
		res.Status, res.Message = Pass, strings.Join(have, ", ")+"; /dev/net/tun usable"
	}
	return res
}

// config: the configuration file parses.
func (r *runner) config() Result {
	res := Result{Check: "config"}
	switch _, err := r.Host.Stat(r.ConfigPath); {
	case r.ConfigErr != nil:
		res.Status = Fail
		res.Message, res.Hint = SplitHint(oneLine(r.ConfigErr.Error()))
		if res.Hint == "" {
			res.Hint = "fix or remove " + r.ConfigPath
		}
	case err != nil:
		res.Status, res.Message = Pass, "no configuration file at "+r.ConfigPath+" (defaults apply)"
	default:
		res.Status, res.Message = Pass, r.ConfigPath
	}
	return res
}

// Free space below which the store check warns or fails.
const (
	warnFree = 2 << 30
	failFree = 256 << 20
)

// store: the store directory is writable and has room.
func (r *runner) store() Result {
	res := Result{Check: "store"}
	root := r.StoreRoot
	if root == "" || !filepath.IsAbs(root) {
		res.Status, res.Message = Fail, "no store: its path is not an absolute path"
		res.Hint = fmt.Sprintf("give an absolute path to devbox --store, DEVBOX_STORE or root under [store] in %s (the config check says which one is wrong)", r.configPath())
		return res
	}
	at := r.nearestExisting(root)
	elsewhere := fmt.Sprintf("choose a store you can write: devbox --store DIR, DEVBOX_STORE=DIR, or root = \"DIR\" under [store] in %s", r.configPath())
	where := root
	if at != root {
		where = root + " (to be created in " + at + ")"
	}
	if fi, err := r.Host.Stat(at); err != nil || !fi.Mode.IsDir() {
		res.Status, res.Message, res.Hint = Fail, "the store "+where+" is not a directory", elsewhere
		return res
	}
	st, err := r.Host.Statfs(at)
	switch {
	case err == nil && st.Flags&stRdonly != 0:
		res.Status, res.Message, res.Hint = Fail, "the store "+where+" is on a read-only filesystem", elsewhere
		return res
	case r.Host.Access(at, 3) != nil:
		res.Status, res.Message, res.Hint = Fail, "the store "+where+" is not writable by you", elsewhere
		return res
	case err != nil:
		res.Status, res.Message = Warn, "the store "+where+" is writable; its free space is unknown: "+unwrapPath(err).Error()
		return res
	}
	free := fmt.Sprintf("%s free", humanBytes(st.Avail))
	switch {
	case st.Avail < failFree:
		res.Status = Fail
		res.Message = "the store " + where + " has only " + free + ": pulls will fail"
		res.Hint = "free disk space there (devbox image prune removes what no image uses), or " + elsewhere
	case st.Avail < warnFree:
		res.Status = Warn
		res.Message = "the store " + where + " has only " + free + ": an image takes 100 MiB to 1 GiB"
		res.Hint = "free disk space there (devbox image prune removes what no image uses), or " + elsewhere
	default:
		res.Status, res.Message = Pass, where+": writable, "+free
	}
	return res
}

func (r *runner) configPath() string {
	if r.ConfigPath == "" {
		return "~/.config/devbox/config.toml"
	}
	return r.ConfigPath
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// kernelAtLeast compares an osrelease string such as "6.8.0-31-generic".
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, " ")
}

func orRoot(p string) string {
	if p == "" {
		return "unknown"
	}
	return p
}

// oneLine folds an error text into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// unwrapPath drops the "op path:" prefix of an fs.PathError, which the
// messages already name.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// gpu: what dev boxes get of the host's GPUs — the NVIDIA driver (device
// nodes, libraries, programs) and /dev/dri. Nothing is required: a host
// without a GPU passes.
func (r *runner) gpu() Result {
	res := Result{Check: "gpu", Status: Pass}
	dri := "no /dev/dri"
	if fi, err := r.Host.Stat("/dev/dri"); err == nil && fi.Mode.IsDir() {
		dri = "/dev/dri bound into dev boxes"
	}
	var nv *device.NVIDIA
	var err error
	if r.FindNVIDIA != nil {
		nv, err = r.FindNVIDIA()
	}
	switch {
	case err != nil:
		res.Status, res.Message = Warn, err.Error()+"; "+dri
	case nv == nil:
		res.Message = "no NVIDIA driver loaded (/proc/driver/nvidia/version); " + dri
	case len(nv.Libraries) == 0:
		res.Status = Warn
		res.Message = "NVIDIA driver " + nv.Version + " is loaded, but none of its libraries (libcuda, libnvidia-ml, …) were found: dev boxes get its device nodes only; " + dri
		res.Hint = "install the driver's user-space libraries (Debian: sudo apt install nvidia-driver libcuda1; Fedora: sudo dnf install xorg-x11-drv-nvidia-cuda-libs)"
	case len(nv.Devices) == 0:
		res.Status = Warn
		res.Message = "NVIDIA driver " + nv.Version + " has no device nodes in /dev; " + dri
		res.Hint = "sudo nvidia-modprobe -u -c=0   # or run nvidia-smi once as root"
	default:
		res.Message = nv.Summary() + "; " + dri
	}
	return res
}
