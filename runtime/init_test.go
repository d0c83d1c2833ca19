package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/devbox-dev/devbox/test/testutil"
	"golang.org/x/sys/unix"
)

// Every namespace the box gets is a new one: the links of /proc/self/ns
// inside name other namespaces than the test's.
func TestBoxNamespacesAreNew(t *testing.T) {
	f := newFixture(t)
	kinds := []string{"user", "mnt", "pid", "uts", "ipc", "net"}
	out := f.sh("for n in " + strings.Join(kinds, " ") + "; do readlink /proc/self/ns/$n; done")
	inside := lines(out)
	if len(inside) != len(kinds) {
		t.Fatalf("ns links inside: %q", inside)
	}
	for i, k := range kinds {
		host, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(inside[i], k+":[") {
			t.Errorf("%s namespace inside: %q", k, inside[i])
		}
		if inside[i] == host {
			t.Errorf("%s namespace inside is the host's (%s)", k, host)
		}
	}
}

// PID 1 is the init, and ps sees the box's processes only.
func TestPIDNamespace(t *testing.T) {
	f := newFixture(t)
	out := f.sh(`tr '\0' ' ' </proc/1/cmdline; echo; echo "sh=$$"; ls /proc/1/task | wc -l; ps -o pid,args; echo end`)
	l := lines(out)
	threads, l := l[2], append(l[:2:2], l[3:len(l)-1]...)
	if !strings.HasPrefix(l[0], "devbox-init ") {
		t.Errorf("/proc/1/cmdline = %q, want devbox-init …", l[0])
	}
	shPid := strings.TrimPrefix(l[1], "sh=")
	ps := l[2:]
	if len(ps) < 3 || len(ps) > 4 {
		t.Fatalf("ps inside shows other processes than the init, sh and ps:\n%s", out)
	}
	pids := map[string]string{}
	for _, line := range ps[1:] {
		pid, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		pids[pid] = strings.TrimSpace(args)
	}
	if !strings.Contains(pids["1"], "devbox-init") {
		t.Errorf("ps: PID 1 is %q, want the init", pids["1"])
	}
	if !strings.HasPrefix(pids[shPid], "sh -c") {
		t.Errorf("ps: the command (PID %s) is %q", shPid, pids[shPid])
	}
	for pid, args := range pids {
		if pid != "1" && !strings.Contains(args, "sh -c tr") && !strings.HasPrefix(args, "ps ") {
			t.Errorf("ps shows a process that is not the box's: %s %s", pid, args)
		}
	}
	// The command is the init's first child: every PID between is one of
	// the init's own threads.
	n, _ := strconv.Atoi(shPid)
	if nt, _ := strconv.Atoi(strings.TrimSpace(threads)); n < 2 || n > nt+2 {
		t.Errorf("the command has PID %d, the init %d threads: it is not the first child", n, nt)
	}
}

// hostname inside changes the box's UTS namespace only.
func TestUTSNamespace(t *testing.T) {
	f := newFixture(t)
	before, _ := os.Hostname()
	l := f.startLive(withSysAdmin(f.spec("sh", "-c", "hostname; cat /etc/hostname; hostname changed-inside && hostname && echo READY && { read x; true; }")))
	got := l.waitFor("READY")
	during, _ := os.Hostname()
	if code := l.finish(); code != 0 {
		t.Fatalf("exit %d: %s", code, l.stderr)
	}
	if got != "devbox-test\ndevbox-test\nchanged-inside" {
		t.Errorf("hostnames inside: %q", got)
	}
	if during != before {
		t.Errorf("the host's hostname changed to %q", during)
	}
}

// A System V message queue made inside (util-linux ipcmk from the host,
// bound into the box with its libraries) is invisible outside.
func TestIPCNamespace(t *testing.T) {
	f := newFixture(t)
	if _, err := os.Stat("/usr/bin/ipcmk"); err != nil {
		testutil.Skip(t, "/usr/bin/ipcmk (util-linux) is not installed")
	}
	hostBefore := sysvQueues(t)
	s := f.spec("sh", "-c", "/usr/bin/ipcmk -Q >/dev/null && cat /proc/sysvipc/msg && echo READY && { read x; true; }")
	s = withSysAdmin(s)
	s.Mounts = hostBinary("/usr/bin/ipcmk")
	l := f.startLive(s)
	inside := l.waitFor("READY")
	hostDuring := sysvQueues(t)
	if code := l.finish(); code != 0 {
		t.Fatalf("exit %d: %s", code, l.stderr)
	}
	if n := len(lines(inside)) - 1; n != 1 {
		t.Fatalf("queues inside: %d\n%s", n, inside)
	}
	if hostDuring != hostBefore {
		t.Errorf("the host's message queues changed while the box ran:\n%s\n→\n%s", hostBefore, hostDuring)
	}
}

func sysvQueues(t *testing.T) string {
	b, err := os.ReadFile("/proc/sysvipc/msg")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostBinary returns read-only mounts that make a dynamically linked host
// binary run in the busybox image.
func hostBinary(bin string) []Mount {
	ms := []Mount{{Source: bin, Target: bin, ReadOnly: true}}
	for _, d := range []string{"/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/lib64"} {
		if _, err := os.Stat(d); err == nil {
			ms = append(ms, Mount{Source: d, Target: d, ReadOnly: true})
		}
	}
	return ms
}

// A mount made inside is not in the host's mount table.
func TestMountNamespace(t *testing.T) {
	f := newFixture(t)
	l := f.startLive(withSysAdmin(f.spec("sh", "-c", "mkdir -p /mnt && mount -t tmpfs devbox-test-tmpfs /mnt && grep -c devbox-test-tmpfs /proc/self/mountinfo && echo READY && { read x; true; }")))
	inside := l.waitFor("READY")
	host, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if code := l.finish(); code != 0 {
		t.Fatalf("exit %d: %s", code, l.stderr)
	}
	if inside != "1" {
		t.Errorf("the tmpfs is not mounted inside: %q", inside)
	}
	if strings.Contains(string(host), "devbox-test-tmpfs") {
		t.Errorf("the box's tmpfs shows in the host's mountinfo")
	}
}

// Files keep the keep-id mapping: root inside is the first subordinate uid
// on the host, the user is the user, uid 33 is subuid+33.
func TestFileOwnership(t *testing.T) {
	f := newFixture(t)
	f.sh("touch /by-root && touch /by-33 && chown 33:33 /by-33")
	s := f.spec("touch", "/tmp/by-user")
	s.User = strconv.Itoa(f.m.UID)
	f.mustRun(s)
	for name, inside := range map[string]int{"by-root": 0, "by-33": 33, "tmp/by-user": f.m.UID} {
		fi, err := os.Lstat(filepath.Join(f.dir, "upper", name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if want := f.m.HostUID(inside); int(st.Uid) != want {
			t.Errorf("%s (uid %d inside) is owned by host uid %d, want %d", name, inside, st.Uid, want)
		}
	}
	if want := f.m.SubUIDs[0].Start; f.m.HostUID(0) != want {
		t.Errorf("HostUID(0) = %d, want the first subuid %d", f.m.HostUID(0), want)
	}
}

// With Net "none" the box has only lo, and it is up.
func TestNetNone(t *testing.T) {
	f := newFixture(t)
	out := f.sh("ls /sys/class/net; cat /sys/class/net/lo/flags; tail -n +3 /proc/net/dev | cut -d: -f1")
	l := lines(out)
	if len(l) != 3 || l[0] != "lo" || strings.TrimSpace(l[2]) != "lo" {
		t.Fatalf("interfaces inside: %q", l)
	}
	flags, err := strconv.ParseUint(strings.TrimPrefix(l[1], "0x"), 16, 32)
	if err != nil || flags&unix.IFF_UP == 0 {
		t.Errorf("lo flags %q: not up", l[1])
	}
}

// With Net "host" the box shares the host's network namespace and sees the
// host's /sys, read-only down to every submount.
func TestNetHost(t *testing.T) {
	f := newFixture(t)
	s := f.spec("sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net | wc -l; grep ' /sys' /proc/self/mountinfo | cut -d' ' -f5,6")
	s.Net = "host"
	out := f.mustRun(s).stdout
	l := lines(out)
	host, _ := os.Readlink("/proc/self/ns/net")
	ifaces, _ := os.ReadDir("/sys/class/net")
	if l[0] != host {
		t.Errorf("net namespace %s, want the host's %s", l[0], host)
	}
	if l[1] != strconv.Itoa(len(ifaces)) {
		t.Errorf("%s interfaces inside, %d on the host", l[1], len(ifaces))
	}
	hostSys := 0
	hostInfo, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range lines(string(hostInfo)) {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == "/sys" || strings.HasPrefix(f[4], "/sys/")) {
			hostSys++
		}
	}
	mounts := l[2:]
	// The host's /sys mounts, and the mask over /sys/firmware.
	if len(mounts) < hostSys {
		t.Errorf("%d mounts under /sys inside, %d on the host:\n%s", len(mounts), hostSys, out)
	}
	for _, m := range mounts {
		if point, opts, _ := strings.Cut(m, " "); !strings.HasPrefix(opts, "ro,") && opts != "ro" {
			t.Errorf("%s is mounted %s in the box", point, opts)
		}
	}
}

// Only Spec.Env (and HOME from passwd) reaches the command: nothing of the
// init's environment, no _DEVBOX_ key; TERM only when the spec has it.
func TestEnvironment(t *testing.T) {
	f := newFixture(t)
	t.Setenv("DEVBOX_CANARY", "from-the-test")
	s := f.spec("env")
	r := f.run(s, nil, "DEVBOX_CANARY=from-the-init", "TERM=xterm-init")
	if r.code != 0 {
		t.Fatal(r)
	}
	got := lines(r.stdout)
	slices.Sort(got)
	want := []string{"HOME=/root", "LANG=C.UTF-8", "PATH=/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("environment inside = %q, want %q", got, want)
	}
	s.Env = append(s.Env, "TERM=xterm-256color", "HOME=/custom")
	r = f.run(s, nil, "TERM=xterm-init")
	if !strings.Contains(r.stdout, "TERM=xterm-256color\n") || !strings.Contains(r.stdout, "HOME=/custom\n") || strings.Contains(r.stdout, "HOME=/root") {
		t.Errorf("environment inside with TERM and HOME in the spec:\n%s", r.stdout)
	}
}

// Descriptors the init inherits (a leaked one without O_CLOEXEC, and one
// passed on purpose) do not reach the command.
func TestNoInheritedFds(t *testing.T) {
	f := newFixture(t)
	leaked, err := unix.Open("/etc/hostname", unix.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leaked)
	extra, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	var stdout, stderr strings.Builder
	p, err := f.start(f.spec("sh", "-c", "ls /proc/self/fd; echo ---; ls /proc/1/fd"), nil, &stdout, &stderr, []*os.File{extra})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(); err != nil || code != 0 {
		t.Fatalf("exit %d %v: %s", code, err, stderr.String())
	}
	cmdFds, initFds, _ := strings.Cut(stdout.String(), "---\n")
	// ls's own directory descriptor is 3.
	if got := strings.Fields(cmdFds); !slices.Equal(got, []string{"0", "1", "2", "3"}) {
		t.Errorf("descriptors of the command: %q, want 0 1 2 (and ls's 3)", got)
	}
	// The proof that there was something to keep out: the init has both.
	init := strings.Fields(initFds)
	if !slices.Contains(init, "3") || !slices.Contains(init, strconv.Itoa(leaked)) {
		t.Errorf("the init's descriptors %q lack the passed (3) or leaked (%d) one: the test proves nothing", init, leaked)
	}
}

func TestExitCodes(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.layer, "bin/not-executable"), "#!/bin/sh\necho no\n")
	writeFile(t, filepath.Join(f.layer, "bin/no-interpreter"), "#!/nonexistent/sh\n")
	os.Chmod(filepath.Join(f.layer, "bin/no-interpreter"), 0o755)
	writeFile(t, filepath.Join(f.layer, "bin/garbage"), "\x00\x01\x02garbage")
	os.Chmod(filepath.Join(f.layer, "bin/garbage"), 0o755)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"true"}, 0, ""},
		{[]string{"false"}, 1, ""},
		{[]string{"sh", "-c", "exit 3"}, 3, ""},
		{[]string{"no-such-command"}, 127, "devbox: no-such-command: command not found\n"},
		{[]string{"/bin/no-such-file"}, 127, "devbox: /bin/no-such-file: no such file or directory\n"},
		{[]string{"no-interpreter"}, 127, "devbox: no-interpreter: no such file or directory (hint:"},
		{[]string{"not-executable"}, 126, "devbox: not-executable: permission denied\n"},
		{[]string{"/etc"}, 126, "devbox: /etc: permission denied\n"},
		{[]string{"garbage"}, 126, "devbox: garbage: exec format error"},
		{[]string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{[]string{"sh", "-c", "kill -TERM $$"}, 143, ""},
	} {
		r := f.run(f.spec(tc.args...), nil)
		if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
			t.Errorf("%q: %s\nwant exit %d, stderr %q", tc.args, r, tc.code, tc.stderr)
		}
	}
}

// Without a terminal the command gets the init's stdin, stdout and stderr:
// a pipe goes through, and the two outputs stay apart.
func TestStdio(t *testing.T) {
	f := newFixture(t)
	r := f.run(f.spec("cat"), strings.NewReader("hi from the pipe\n"))
	if r.code != 0 || r.stdout != "hi from the pipe\n" || r.stderr != "" {
		t.Errorf("cat: %s", r)
	}
	r = f.run(f.spec("sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 5"), nil)
	if r.code != 5 || r.stdout != "to-stdout\n" || r.stderr != "to-stderr\n" {
		t.Errorf("separate outputs: %s", r)
	}
}

// Spec.Remove leaves nothing of the box behind, although root of the box
// created files the host user could not delete.
func TestRemove(t *testing.T) {
	f := newFixture(t)
	s := f.spec("sh", "-c", "mkdir -p /deep/er && touch /deep/er/file && chmod 000 /deep/er /deep && chown 33 /deep/er/file")
	s.Remove = true
	f.mustRun(s)
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the container directory: %s", e.Name())
	}
	// Without Remove the writable layer stays.
	s.Remove = false
	f.mustRun(s)
	if _, err := os.Stat(filepath.Join(f.dir, "upper", "deep")); err != nil {
		t.Errorf("the writable layer is gone without Remove: %v", err)
	}
}

// The upper layer persists between runs of the same box.
func TestPersistentUpper(t *testing.T) {
	f := newFixture(t)
	f.sh("echo kept > /root/state")
	if got := f.sh("cat /root/state /etc/motd"); got != "kept\nfrom the image\n" {
		t.Errorf("second run sees %q", got)
	}
}

// The standard mounts are there, masked paths are masked and the
// read-only ones are read-only.
func TestStandardMounts(t *testing.T) {
	f := newFixture(t)
	out := f.sh(`
		cat /etc/hosts /etc/resolv.conf
		readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin
		echo x > /dev/null && head -c 4 /dev/zero | wc -c
		stat -c %a /dev/shm
		for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do test -e $p || continue; echo "masked $p $(wc -c < $p)"; done
		ls /sys/firmware | wc -l
		echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo WRITABLE-proc-sys
		echo 1 > /proc/sysrq-trigger 2>/dev/null && echo WRITABLE-sysrq
		touch /sys/kernel/devbox 2>/dev/null && echo WRITABLE-sys
		grep -c ' /dev/pts .*devpts' /proc/self/mountinfo
		grep -c ' /dev/mqueue .*mqueue' /proc/self/mountinfo
		echo done`)
	for _, want := range []string{
		"127.0.0.1 localhost devbox-test\nnameserver 192.0.2.53\n",
		"pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n",
		"4\n1777\n",
		"0\n1\n1\ndone\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	for _, line := range lines(out) {
		if strings.HasPrefix(line, "masked ") && !strings.HasSuffix(line, " 0") {
			t.Errorf("not masked: %s", line)
		}
	}
	if strings.Contains(out, "WRITABLE") {
		t.Errorf("a read-only path is writable:\n%s", out)
	}
}

// Extra mounts: read-write, read-only, optional, and targets created in
// the image.
func TestSpecMounts(t *testing.T) {
	f := newFixture(t)
	rw, ro := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(ro, "file"), "read-only content\n")
	hostFile := filepath.Join(t.TempDir(), "single")
	writeFile(t, hostFile, "single file\n")
	s := f.spec("sh", "-c", `
		echo written > /work/rw/out
		cat /data/ro/file
		echo x > /data/ro/new 2>/dev/null && echo WRITABLE
		cat /single
		test -e /opt/missing || echo no-optional`)
	s.Mounts = []Mount{
		{Source: rw, Target: "/work/rw"},
		{Source: ro, Target: "/data/ro", ReadOnly: true},
		{Source: hostFile, Target: "/single"},
		{Source: filepath.Join(rw, "does-not-exist"), Target: "/opt/missing", Optional: true},
	}
	// The read-only bind is locked by a helper the init runs in the box:
	// this (race-enabled, dynamically linked) test binary needs its loader.
	s.Mounts = append(s.Mounts, hostBinary(os.Args[0])[1:]...)
	out := f.mustRun(s).stdout
	if out != "read-only content\nsingle file\nno-optional\n" {
		t.Errorf("output: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "out")); err != nil || string(b) != "written\n" {
		t.Errorf("write through the rw mount: %q %v", b, err)
	}
	s.Mounts = []Mount{{Source: filepath.Join(rw, "does-not-exist"), Target: "/opt/missing"}}
	r := f.run(s, nil)
	if r.code != 125 || !strings.HasPrefix(r.stderr, "devbox: bind-mounting ") {
		t.Errorf("missing mandatory source: %s", r)
	}
}

// Users: the image default (root), a name, a uid, uid:gid, name:group, with
// supplementary groups and HOME from /etc/passwd; unknown names fail.
func TestUsers(t *testing.T) {
	f := newFixture(t)
	name, uid, gid := testUserName(f.m), f.m.UID, f.m.GID
	for _, tc := range []struct {
		user, want string
	}{
		{"", "uid=0(root) gid=0(root) groups=0(root) /root"},
		{name, fmt.Sprintf("uid=%d(%s) gid=%d(%s) groups=%d(%s),10(wheel),50(staff) /home/%s", uid, name, gid, name, gid, name, name)},
		{strconv.Itoa(uid), fmt.Sprintf("uid=%d(%s) gid=%d(%s) groups=%d(%s),10(wheel),50(staff) /home/%s", uid, name, gid, name, gid, name, name)},
		{name + ":tty", fmt.Sprintf("uid=%d(%s) gid=5(tty) groups=5(tty),10(wheel),50(staff) /home/%s", uid, name, name)},
		{"4242:4343", "uid=4242 gid=4343 groups=4343 /"},
		{"0:50", "uid=0(root) gid=50(staff) groups=50(staff) /root"},
	} {
		s := f.spec("sh", "-c", "echo $(id) $HOME")
		s.User = tc.user
		r := f.run(s, nil)
		if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
			t.Errorf("user %q: %s\nwant %s", tc.user, r, tc.want)
		}
	}
	for _, tc := range []struct{ user, stderr string }{
		{"nobody-here", "devbox: unable to find user nobody-here: no matching entries in passwd file\n"},
		{name + ":nogroup-here", "devbox: unable to find group nogroup-here: no matching entries in group file\n"},
		{"999999", "devbox: user 999999: uid 999999 is not mapped in the box's user namespace (hint:"},
	} {
		s := f.spec("id")
		s.User = tc.user
		r := f.run(s, nil)
		if r.code != 125 || !strings.HasPrefix(r.stderr, tc.stderr) {
			t.Errorf("user %q: %s\nwant 125 and %q", tc.user, r, tc.stderr)
		}
	}
}

// A missing working directory falls back to / with a warning.
func TestWorkingDirectory(t *testing.T) {
	f := newFixture(t)
	s := f.spec("pwd")
	s.Cwd = "/home"
	if r := f.run(s, nil); r.stdout != "/home\n" || r.stderr != "" {
		t.Errorf("cwd /home: %s", r)
	}
	s.Cwd = "/no/such/dir"
	r := f.run(s, nil)
	if r.code != 0 || r.stdout != "/\n" || r.stderr != "devbox: warning: working directory /no/such/dir does not exist in the box: using /\n" {
		t.Errorf("missing cwd: %s", r)
	}
}

// withSysAdmin gives s's commands CAP_SYS_ADMIN (not in the default set):
// the namespace tests change the box's own hostname and mounts.
func withSysAdmin(s *Spec) *Spec {
	caps, err := CapSet([]string{"SYS_ADMIN"}, nil)
	if err != nil {
		panic(err)
	}
	s.Security.Caps = caps
	return s
}
