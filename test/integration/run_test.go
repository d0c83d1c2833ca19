//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/internal/warm"
)

// nsLinks reads /proc/self/ns/* of this (host) process.
func nsLinks(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range []string{"user", "mnt", "pid", "uts", "ipc", "net"} {
		l, err := os.Readlink("/proc/self/ns/" + n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = l
	}
	return out
}

func TestRunSixNamespaces(t *testing.T) {
	e := newEnv(t)
	r := e.ok("run", "busybox", "--", "sh", "-c", "for n in user mnt pid uts ipc net; do echo $n $(readlink /proc/self/ns/$n); done")
	host := nsLinks(t)
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("unexpected line %q", line)
		}
		seen++
		if host[f[0]] == f[1] {
			t.Errorf("%s namespace is the host's (%s)", f[0], f[1])
		}
	}
	if seen != 6 {
		t.Errorf("saw %d namespaces: %s", seen, r.stdout)
	}
}

// findInit returns the host pid of the box init whose spec lives under root.
func findInit(t *testing.T, root string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, ent := range ents {
			pid, err := strconv.Atoi(ent.Name())
			if err != nil {
				continue
			}
			b, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
			// devbox-init fd:N STATUS BOXDIR (devbox run), or
			// devbox-init SPECPATH (a box)
			if bytes.HasPrefix(b, []byte("devbox-init\x00")) && bytes.Contains(b, []byte("\x00"+root)) {
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("box init not found")
	return 0
}

func TestRunIdentityMapping(t *testing.T) {
	e := newEnv(t)
	m := mapping(t)
	c := e.cmd("run", "--name", "idmap", "busybox", "--", "sh", "-c", "echo root > /by-root; chown 33:33 /by-root; touch /by-user; chown "+strconv.Itoa(m.UID)+" /by-user; sleep 2")
	// A cloned init, found by its command line (a warm holder's spare
	// shows as "devbox-init spare"; TestRunHolder checks its map).
	c.Env = append(c.Env, "DEVBOX_WARM=0")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := findInit(t, e.root)
	// Seen from the host, the box's map is keep-id onto the subuids. The
	// init exists a moment before newuidmap has written it.
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); len(b) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid)); err != nil {
			t.Fatal(err)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var lines [][3]int
	for sc.Scan() {
		var l [3]int
		fmt.Sscan(sc.Text(), &l[0], &l[1], &l[2])
		lines = append(lines, l)
	}
	total := 0
	for _, l := range lines {
		total += l[2]
		if l[0] == 0 && l[1] != m.SubUIDs[0].Start {
			t.Errorf("uid 0 in the box maps to host %d, want the first subuid %d", l[1], m.SubUIDs[0].Start)
		}
		if l[0] == m.UID && l[1] != m.UID {
			t.Errorf("the user's uid maps to host %d, want itself", l[1])
		}
	}
	if total < 65536 {
		t.Errorf("only %d ids mapped, want the full range: %s", total, b)
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(e.store().ContainersDir())
	if len(ents) != 1 {
		t.Fatalf("kept box dirs: %v", ents)
	}
	upper := filepath.Join(e.store().ContainersDir(), ents[0].Name(), "upper")
	if uid, _ := ownerOf(t, filepath.Join(upper, "by-root")); uid != m.HostUID(33) {
		t.Errorf("a file chowned to 33 in the box is host uid %d, want %d", uid, m.HostUID(33))
	}
	if uid, _ := ownerOf(t, filepath.Join(upper, "by-user")); uid != m.UID {
		t.Errorf("a file chowned to the user in the box is host uid %d, want %d", uid, m.UID)
	}
	// A file created by root in the box is the first subuid's.
	r := e.ok("run", "--name", "idmap2", "busybox", "--", "touch", "/made-by-root")
	_ = r
	ents, _ = os.ReadDir(e.store().ContainersDir())
	found := false
	for _, ent := range ents {
		p := filepath.Join(e.store().ContainersDir(), ent.Name(), "upper", "made-by-root")
		if _, err := os.Lstat(p); err == nil {
			found = true
			if uid, _ := ownerOf(t, p); uid != m.SubUIDs[0].Start {
				t.Errorf("root's file is host uid %d, want %d", uid, m.SubUIDs[0].Start)
			}
		}
	}
	if !found {
		t.Error("file written by root not found in the kept box")
	}
}

func TestRunPIDUTSIPCMountNet(t *testing.T) {
	e := newEnv(t)
	hostName, _ := os.Hostname()
	// SYS_ADMIN: the box changes its own hostname and mounts (not in the
	// default set, docs/security.md).
	r := e.ok("run", "--net", "none", "--cap-add", "SYS_ADMIN", "--hostname", "boxhost", "busybox", "--", "sh", "-c",
		"cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $(ps -o comm | tail -n +2); hostname; hostname changed; hostname; "+
			"mkdir -p /mnt/x && mount -t tmpfs boxtmpfs /mnt/x && grep -c boxtmpfs /proc/self/mountinfo; ls /sys/class/net; cat /sys/class/net/lo/flags")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 7 {
		t.Fatalf("output: %q stderr %q", r.stdout, r.stderr)
	}
	if !strings.HasPrefix(lines[0], "devbox-init ") {
		t.Errorf("PID 1 is %q, want devbox's init", lines[0])
	}
	// ps lists only the box's processes: its init and this very pipeline.
	for _, comm := range strings.Fields(lines[1]) {
		switch comm {
		case "devbox-init", "exe", "sh", "ps", "tail", "echo":
		default:
			t.Errorf("ps in the box sees %q (all: %s), not one of the box's processes", comm, lines[1])
		}
	}
	// make build embeds the small box init (internal/libexec): PID 1 runs
	// that program, not a second copy of the CLI.
	if f := strings.Fields(lines[1]); len(f) == 0 || f[0] != "devbox-init" {
		t.Errorf("PID 1 runs %q, want the embedded devbox-init (is DEVBOX_BIN built by make build?)", lines[1])
	}
	if lines[2] != "boxhost" || lines[3] != "changed" {
		t.Errorf("hostname inside: %q then %q", lines[2], lines[3])
	}
	if h, _ := os.Hostname(); h != hostName {
		t.Errorf("host name changed to %q", h)
	}
	if lines[4] != "1" {
		t.Errorf("mount inside not visible inside: %q", lines[4])
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte("boxtmpfs")) {
		t.Error("a mount made in the box is visible on the host")
	}
	if lines[5] != "lo" {
		t.Errorf("--net none shows interfaces %q, want only lo", lines[5])
	}
	if flags, err := strconv.ParseInt(strings.TrimPrefix(lines[6], "0x"), 16, 64); err != nil || flags&1 == 0 {
		t.Errorf("lo is not up: flags %q", lines[6])
	}
	// IPC: a message queue made in the box is invisible on the host.
	r = e.ok("run", "debian:trixie", "--", "sh", "-c", "ipcmk -Q >/dev/null && ipcs -q | grep -c 0x")
	if strings.TrimSpace(r.stdout) != "1" {
		t.Errorf("ipcmk inside: %q %q", r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile("/proc/sysvipc/msg"); strings.Count(string(b), "\n") > 1 {
		t.Errorf("a message queue is visible on the host:\n%s", b)
	}
}

func TestRunProcessContract(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "-q", "busybox")
	// Exit codes pass through.
	for cmd, want := range map[string]int{"exit 0": 0, "exit 3": 3, "kill -9 $$": 137, "kill -15 $$": 143} {
		if r := e.run("run", "busybox", "--", "sh", "-c", cmd); r.code != want {
			t.Errorf("%q: exit %d, want %d (%s)", cmd, r.code, want, r.stderr)
		}
	}
	if r := e.run("run", "busybox", "--", "no-such-command"); r.code != 127 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("missing command: exit %d %q", r.code, r.stderr)
	}
	if r := e.run("run", "busybox", "--", "/etc/passwd"); r.code != 126 {
		t.Errorf("non-executable: exit %d %q", r.code, r.stderr)
	}
	// stdin, stdout and stderr stay separate.
	c := e.cmd("run", "busybox", "--", "sh", "-c", "cat; echo to-stderr >&2")
	c.Stdin = strings.NewReader("hi from stdin\n")
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatal(err, errb.String())
	}
	if out.String() != "hi from stdin\n" || errb.String() != "to-stderr\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errb.String())
	}
	// No host environment and no host fd leak in; TERM does.
	c = e.cmd("run", "busybox", "--", "sh", "-c", "env; ls /proc/self/fd")
	c.Env = append(c.Env, "DEVBOX_CANARY=leak", "TERM=xterm-test")
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c.ExtraFiles = []*os.File{f, f, f}
	out.Reset()
	c.Stdout = &out
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "DEVBOX_CANARY") || strings.Contains(out.String(), "_DEVBOX_") {
		t.Errorf("host environment leaked:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "TERM=xterm-test") {
		t.Errorf("TERM not passed:\n%s", out.String())
	}
	fds := strings.Fields(out.String()[strings.LastIndex(out.String(), "=")+1:])
	for _, fd := range fds {
		if n, err := strconv.Atoi(fd); err == nil && n > 3 {
			t.Errorf("fd %s leaked into the box (fds: %v)", fd, fds)
		}
	}
	// Image config: Env, WorkingDir; overrides.
	r := e.ok("run", "-e", "FOO=bar", "-w", "/tmp", "-u", "65534", "busybox", "--", "sh", "-c", "echo $FOO; pwd; id -u")
	if r.stdout != "bar\n/tmp\n65534\n" {
		t.Errorf("overrides: %q", r.stdout)
	}
}

// TestRunSignals: SIGTERM and SIGINT sent to devbox run reach the
// command, however the box started: cold, from a warm holder's spare
// (through a pidfd of the init) or replayed by the front. The same
// command line runs several times, so that the later runs take the warm
// paths; the test fails when none did (it would not cover them), unless
// each box needs a systemd scope of its own, which no warm path serves.
func TestRunSignals(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "-q", "busybox")
	var paths []string
	for i := 0; i < 6; i++ {
		sig := []syscall.Signal{syscall.SIGTERM, syscall.SIGINT}[i%2]
		c := e.cmd("run", "busybox", "--", "sh", "-c", "trap 'exit 42' TERM INT; echo ready; while true; do sleep 0.1; done")
		c.Env = append(c.Env, traceEnv)
		var stderr strings.Builder
		c.Stderr = &stderr
		stdout, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
			t.Fatalf("waiting for ready: %q %v", buf, err)
		}
		c.Process.Signal(sig)
		err := c.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		path := "cold"
		switch {
		case strings.Contains(stderr.String(), "cgroup: scope started"):
			// A per-box systemd scope (an ssh or console login on a
			// systemd host): no warm path can serve it.
			path = "cold, scope"
		case strings.Contains(stderr.String(), "warm: replaying"):
			path = "replayed"
		case strings.Contains(stderr.String(), "warm: via holder"):
			path = "via a holder"
		}
		paths = append(paths, path)
		if code != 42 {
			t.Errorf("%v, %s: exit %d, want 42 (the trap ran)", sig, path, code)
		}
	}
	t.Logf("how the runs started: %v", paths)
	if !slices.Contains(paths, "cold, scope") && !slices.Contains(paths, "replayed") && !slices.Contains(paths, "via a holder") {
		t.Errorf("no run took a warm path (%v): the test covers only cold starts", paths)
	}
}

func TestRunTerminal(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "-q", "busybox")
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script(1) from util-linux is needed for the pty test")
	}
	cmdline := e.bin + " run busybox -- sh -c 'tty; stty size'"
	c := exec.Command("script", "-qec", "stty rows 33 cols 101; "+cmdline, "/dev/null")
	c.Env = e.environ()
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := strings.ReplaceAll(string(out), "\r", "")
	if !strings.Contains(s, "/dev/pts/") || !strings.Contains(s, "33 101") {
		t.Errorf("terminal in the box: %q", s)
	}
}

func TestRunErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--pull", "never", "busybox", "true"}, "--pull never"},
		{[]string{"run", "--net", "bridge", "busybox", "true"}, "invalid --net"},
		{[]string{"run", "--name", "bad/name", "busybox", "true"}, "invalid box name"},
		{[]string{"run", "-u", "nosuchuser", "busybox", "true"}, "nosuchuser"},
	}
	for _, c := range cases {
		r := e.run(c.args...)
		if r.code != 125 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("devbox %v: exit %d stderr %q, want 125 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	// Ephemeral boxes leave nothing behind.
	e.ok("run", "busybox", "--", "sh", "-c", "echo x > /file")
	if ents, _ := os.ReadDir(e.store().ContainersDir()); len(ents) != 0 {
		t.Errorf("ephemeral box left %v", ents)
	}
}

// TestRunWithoutSubordinateIDs: a user without /etc/subuid ranges still
// gets a working box (single-ID mapping: root inside is the user) and one
// warning line saying what is lost and how to add ranges.
func TestRunWithoutSubordinateIDs(t *testing.T) {
	e := newEnv(t)
	// Twice, with --net none: the second run could be replayed
	// (internal/warm), and must still warn.
	for i := 0; i < 2; i++ {
		runWithoutSubordinateIDs(t, e)
	}
}

func runWithoutSubordinateIDs(t *testing.T, e *env) {
	t.Helper()
	c := e.cmd("run", "--net", "none", "busybox", "--", "sh", "-c", "id -u; cat /proc/self/uid_map; echo hi > /tmp/x && cat /tmp/x")
	c.Env = append(c.Env, "DEVBOX_SUBIDS=none")
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != "0" || len(lines) != 3 || lines[2] != "hi" {
		t.Errorf("single-ID box: %q", out.String())
	}
	if f := strings.Fields(lines[1]); len(f) != 3 || f[2] != "1" {
		t.Errorf("uid_map should map one id: %q", lines[1])
	}
	if strings.Count(errb.String(), "warning:") != 1 || !strings.Contains(errb.String(), "usermod --add-subuids") {
		t.Errorf("want one warning with the fix, got %q", errb.String())
	}
}

func TestRunHostNetwork(t *testing.T) {
	e := newEnv(t)
	host, _ := os.Readlink("/proc/self/ns/net")
	r := e.ok("run", "--net", "host", "busybox", "--", "readlink", "/proc/self/ns/net")
	if strings.TrimSpace(r.stdout) != host {
		t.Errorf("--net host: box netns %q, host %q", r.stdout, host)
	}
}

// An ephemeral run keeps its writes in memory (docs/config.md [run]
// scratch): nothing of its writable layer reaches the box directory on the
// disk. With scratch = "disk", or a kept box, it does.
func TestRunScratch(t *testing.T) {
	e := newEnv(t)
	upperOnDisk := func(args ...string) bool {
		t.Helper()
		c := e.cmd(append(append([]string{"run"}, args...), "busybox", "--", "sh", "-c", "dd if=/dev/zero of=/written bs=1k count=64 2>/dev/null; echo READY; read x; true")...)
		in, _ := c.StdinPipe()
		out, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if l, err := bufio.NewReader(out).ReadString('\n'); err != nil || l != "READY\n" {
			t.Fatalf("box did not start: %q %v", l, err)
		}
		found := false
		ents, _ := os.ReadDir(e.store().ContainersDir())
		for _, ent := range ents {
			if _, err := os.Lstat(filepath.Join(e.store().ContainersDir(), ent.Name(), "upper")); err == nil {
				found = true
			}
		}
		in.Close()
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
		return found
	}
	if upperOnDisk() {
		t.Error("an ephemeral run's writable layer is on the disk (want memory)")
	}
	if !upperOnDisk("--name", "kept-scratch") {
		t.Error("a kept run's writable layer is not on the disk")
	}
	cfg := filepath.Join(e.config, "devbox", "config.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(b, []byte("\n[run]\nscratch = \"disk\"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if !upperOnDisk() {
		t.Error(`with [run] scratch = "disk" an ephemeral run's writable layer is not on the disk`)
	}
	if err := os.WriteFile(cfg, append(b, []byte("\n[run]\nscratch = \"ram\"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("run", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, `run.scratch is "ram"`) {
		t.Errorf("a bad scratch setting: %d %q", r.code, r.stderr)
	}
	if err := os.WriteFile(cfg, b, 0o644); err != nil { // the clean-up runs devbox
		t.Fatal(err)
	}
}

// Killing devbox run (SIGKILL: it cannot clean up) takes the box with it:
// through the CLI and a replay, the init's parent-death signal, armed again
// after it became root of its user namespace, kills it; a warm holder's
// spare ends when its connection to devbox closes. The box's processes die
// with its PID namespace.
func TestRunKilledCLIKillsBox(t *testing.T) {
	e := newEnv(t)
	// Through the CLI, and replayed through a holder (internal/warm): a
	// run that ends normally leaves the record and the holder.
	args := []string{"run", "--net", "none", "busybox", "--", "sh", "-c", "echo started; read x || exit 0; exec sleep 60"}
	for i, env := range []string{"DEVBOX_WARM=0", "DEVBOX_WARM=1"} {
		for k := 0; k < i; k++ {
			r := e.runEnv([]string{"DEVBOX_TRACE=1", env}, args...)
			if r.code != 0 { // stdin at its end: exits at once
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			waitSpawned(t, r.stderr)
		}
		r := startRun(t, e, []string{"DEVBOX_TRACE=1", env}, true, args...)
		r.c.Process.Signal(syscall.SIGKILL)
		r.c.Wait()
		b := r.trace()
		if got, want := strings.Contains(b, "warm: replaying"), i > 0; got != want {
			t.Errorf("run %d: replayed %v, want %v", i, got, want)
		}
		if want := i == 1; r.held != want {
			t.Errorf("run %d: through a holder %v, want %v:\n%s", i, r.held, want, b)
		}
		waitGone(t, r.pid, 10*time.Second, fmt.Sprintf("run %d: the box init %d still runs after devbox run was killed", i, r.pid))
	}
}

// running is a devbox run that printed its first line: the command, its
// trace (stderr, in a file), the box init's pid and whether a warm
// holder's spare runs it.
type running struct {
	c      *exec.Cmd
	stderr string
	pid    int
	held   bool
}

func (r *running) trace() string { b, _ := os.ReadFile(r.stderr); return string(b) }

// startRun starts devbox with args and extra environment env (DEVBOX_TRACE
// among it) and waits for the box's first line, which must be "started";
// with stdin, the command's standard input stays open until the test ends.
func startRun(t *testing.T, e *env, env []string, stdin bool, args ...string) *running {
	t.Helper()
	c := e.cmd(args...)
	c.Env = append(c.Env, env...)
	errf, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = errf
	if stdin {
		in, _ := c.StdinPipe()
		t.Cleanup(func() { in.Close() })
	}
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if l, err := bufio.NewReader(out).ReadString('\n'); err != nil || l != "started\n" {
		t.Fatalf("box did not start: %q %v", l, err)
	}
	r := &running{c: c, stderr: errf.Name()}
	if r.pid, r.held = heldPid(r.trace()); !r.held {
		r.pid = findInit(t, e.root)
	}
	return r
}

// waitGone waits until pid is gone (or a zombie waiting for nobody) and
// fails with msg after d.
func waitGone(t *testing.T, pid int, d time.Duration, msg string) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
	}
}

// heldPid finds the pid of a holder's spare in devbox's trace lines.
func heldPid(trace string) (int, bool) {
	const mark = "warm: via holder, pid "
	i := strings.Index(trace, mark)
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(trace[i+len(mark):])
	if len(f) == 0 {
		return 0, false
	}
	pid, err := strconv.Atoi(f[0])
	return pid, err == nil
}

// waitSpawned waits for the socket of the holder a run's trace says it
// started, if it started one.
func waitSpawned(t *testing.T, trace string) {
	t.Helper()
	const mark = "warm: holder spawned: "
	i := strings.Index(trace, mark)
	if i < 0 {
		return
	}
	sock := strings.Fields(trace[i+len(mark):])[0]
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return
		}
	}
	t.Fatalf("the holder started for %s does not listen", sock)
}

// waitHolder waits until a warm holder listens in runtime directory rt.
func waitHolder(t *testing.T, rt string) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if socks, _ := filepath.Glob(filepath.Join(warm.Dir(rt), "h-*.sock")); len(socks) > 0 {
			return socks
		}
	}
	t.Fatal("no warm holder started")
	return nil
}

// TestRunHolderKilled: a holder that dies leaves the boxes it started to
// their devbox runs (which finish as usual), and its spares end.
func TestRunHolderKilled(t *testing.T) {
	e := newEnv(t)
	rt := t.TempDir()
	if err := os.Chmod(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"DEVBOX_TRACE=1", "XDG_RUNTIME_DIR=" + rt, warm.IdleEnv + "=30"}
	args := []string{"run", "--net", "none", "busybox", "--", "sh", "-c", "echo started; sleep 1; exit 6"}
	for i := 0; i < 2; i++ {
		if r := e.runEnv(env, args...); r.code != 6 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	}
	waitHolder(t, rt)
	r := startRun(t, e, env, false, args...)
	pid := r.pid
	if !r.held {
		t.Fatalf("not through the holder:\n%s", r.trace())
	}
	holder := ppid(pid)
	var spares []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		if p, err := strconv.Atoi(ent.Name()); err == nil && p != pid && ppid(p) == holder {
			spares = append(spares, p)
		}
	}
	if len(spares) == 0 {
		t.Fatal("the holder has no spare")
	}
	if err := syscall.Kill(holder, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := r.c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 6 {
		t.Errorf("the run whose holder was killed: %v, want exit 6; stderr:\n%s", err, r.trace())
	}
	for _, p := range spares {
		waitGone(t, p, 5*time.Second, fmt.Sprintf("spare %d still runs after its holder was killed", p))
	}
}

// ppid is the parent of pid (0 when it is gone).
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// TestRunHolder: from the third identical run on, a warm holder's spare
// init runs the box (internal/holder): with the subordinate id range and
// exit code as always, its own mount, PID, UTS, IPC and network namespace
// per run (the user namespace is the holder's), standard input, the exit
// status of an init that died without reporting, a foreign request
// declined, DEVBOX_WARM=0, and the holder gone after its idle time, with
// its socket.
func TestRunHolder(t *testing.T) {
	e := newEnv(t)
	m := mapping(t)
	// A runtime directory of its own: this test's holders only.
	rt := t.TempDir()
	if err := os.Chmod(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"DEVBOX_TRACE=1", "XDG_RUNTIME_DIR=" + rt, warm.IdleEnv + "=3"}
	args := []string{"run", "--net", "none", "busybox", "--", "sh", "-c",
		"cat /proc/self/uid_map; for n in user mnt pid uts ipc net; do readlink /proc/self/ns/$n; done; exit 9"}
	run := func(wantHeld bool, extra ...string) []string {
		t.Helper()
		r := e.runEnv(append(slices.Clone(env), extra...), args...)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		first := strings.Fields(lines[0])
		if r.code != 9 || len(lines) != 9 || len(first) != 3 || first[0] != "0" || first[1] != strconv.Itoa(m.SubUIDs[0].Start) {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if _, held := heldPid(r.stderr); held != wantHeld {
			t.Fatalf("through a holder: %v, want %v; stderr:\n%s", held, wantHeld, r.stderr)
		}
		return lines[3:]
	}
	// The first run leaves a holder, which must not keep what devbox
	// inherited: here a pipe's write end as fd 3, which would never read
	// its end otherwise.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := e.cmd(args...)
	c.Env = append(c.Env, env...)
	c.ExtraFiles = []*os.File{pw}
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Run(); err == nil || strings.Contains(errb.String(), "warm: replaying") || !strings.Contains(errb.String(), "warm: holder spawned") {
		t.Fatalf("first run: %v (want exit 9, not replayed, a holder spawned):\n%s", err, errb.String())
	}
	pw.Close()
	waitHolder(t, rt)
	pr.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := pr.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the pipe devbox inherited is still open somewhere after the holder started: read %d, %v", n, err)
	}
	pr.Close()
	// Two boxes through the holder at the same time: namespace inode
	// numbers are reused once freed, so two runs one after the other may
	// show the same ones. The first, another command line, is a start of
	// the CLI the holder serves; it waits for its stdin to close. The
	// second is a replay.
	ca := e.cmd(append(slices.Clone(args[:len(args)-1]), "cat /proc/self/uid_map; for n in user mnt pid uts ipc net; do readlink /proc/self/ns/$n; done; read x; exit 9")...)
	ca.Env = append(ca.Env, env...)
	stdinA, err := ca.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outA, err := ca.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errA bytes.Buffer
	ca.Stderr = &errA
	if err := ca.Start(); err != nil {
		t.Fatal(err)
	}
	var linesA []string
	for sc := bufio.NewScanner(outA); len(linesA) < 9 && sc.Scan(); {
		linesA = append(linesA, sc.Text())
	}
	b := run(true)
	stdinA.Close()
	werr := ca.Wait()
	if ee, ok := werr.(*exec.ExitError); !ok || ee.ExitCode() != 9 || len(linesA) != 9 {
		t.Fatalf("first box: %v, stdout %q, stderr:\n%s", werr, linesA, errA.String())
	}
	if _, held := heldPid(errA.String()); !held {
		t.Fatalf("first box: not through a holder; stderr:\n%s", errA.String())
	}
	a := linesA[3:]
	host := nsLinks(t)
	if a[0] != b[0] || a[0] == host["user"] {
		t.Errorf("user namespaces: %s and %s (host %s), want the holder's", a[0], b[0], host["user"])
	}
	for i, n := range []string{"mnt", "pid", "uts", "ipc", "net"} {
		if a[i+1] == b[i+1] || a[i+1] == host[n] {
			t.Errorf("%s namespaces of two runs through the holder: %s and %s (host %s)", n, a[i+1], b[i+1], host[n])
		}
	}
	run(false, "DEVBOX_WARM=0")

	// A new command line with the same flags is not replayed, but the CLI
	// gets its init from the holder too.
	for i := 0; i < 2; i++ {
		r := e.runEnv(env, "run", "--net", "none", "busybox", "--", "sh", "-c", "cat /proc/self/uid_map; exit 8", strconv.Itoa(i))
		first := strings.Fields(r.stdout)
		if r.code != 8 || len(first) < 3 || first[1] != strconv.Itoa(m.SubUIDs[0].Start) {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
		}
		_, held := heldPid(r.stderr)
		if !held || strings.Contains(r.stderr, "warm: replaying") {
			t.Errorf("run %d: not a start of the CLI through the holder:\n%s", i, r.stderr)
		}
	}

	// The box looks the same however it started (a spare stages /proc,
	// /sys and /dev ahead): its mounts, sorted, its devices, descriptors,
	// environment, ids, processes and confinement (capabilities,
	// no_new_privs, seccomp, OOM score).
	look := []string{"run", "--net", "none", "busybox", "--", "sh", "-c",
		"grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; cat /proc/self/oom_score_adj; cat /proc/self/mounts; cd /dev && for f in * pts/* shm mqueue; do stat -c '%n %f %u %g %t %T %N' $f; done; cat /proc/kcore /sys/firmware/x 2>&1 | wc -c; " +
			"ls -l /proc/self/fd | sed 's/.*[0-9] \\([0-9]* ->\\)/fd \\1/'; env; id; ps -o user,comm; touch /proc/sys/x 2>&1"}
	id := regexp.MustCompile(`containers/[0-9a-f]+|pipe:\[[0-9]+\]`)
	view := func(extra ...string) (string, bool) {
		t.Helper()
		r := e.runEnv(append(slices.Clone(env), extra...), look...)
		if r.code != 1 { // touch fails: /proc/sys is read-only
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
		}
		lines := strings.Split(id.ReplaceAllString(r.stdout, "ID"), "\n")
		sort.Strings(lines)
		_, held := heldPid(r.stderr)
		return strings.Join(lines, "\n"), held
	}
	cli, _ := view("DEVBOX_WARM=0")
	for i := 0; ; i++ {
		v, held := view()
		if !held {
			if i == 2 {
				t.Fatal("three runs, none through the holder")
			}
			continue
		}
		if v != cli {
			t.Errorf("the box through the CLI:\n%s\nthrough a holder:\n%s", cli, v)
		}
		break
	}

	// Standard input reaches the command.
	for i := 0; i < 3; i++ {
		c := e.cmd("run", "--net", "none", "busybox", "--", "cat")
		c.Env = append(c.Env, env...)
		c.Stdin = strings.NewReader("through stdin\n")
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil || out.String() != "through stdin\n" {
			t.Errorf("run %d: cat: %v, stdout %q, stderr:\n%s", i, err, out.String(), errb.String())
		}
		if _, held := heldPid(errb.String()); i == 2 && !held {
			t.Errorf("run %d: not through the holder:\n%s", i, errb.String())
		}
	}

	// An init killed before it reports: devbox gets its status from the
	// holder.
	sleeper := []string{"run", "--net", "none", "busybox", "--", "sh", "-c", "echo started; exec sleep 60"}
	for i := 0; i < 3; i++ {
		r := startRun(t, e, env, false, sleeper...)
		if err := syscall.Kill(r.pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := r.c.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
			t.Errorf("run %d (through a holder: %v): init killed: %v, want exit 137; stderr:\n%s", i, r.held, err, r.trace())
		}
		if i == 2 && !r.held {
			t.Errorf("run %d: not through the holder:\n%s", i, r.trace())
		}
		if i < 2 {
			waitHolder(t, rt)
		}
	}

	// A request with another fingerprint is declined, and the spare stays.
	socks := waitHolder(t, rt)
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: socks[0]}); err != nil {
		t.Fatal(err)
	}
	msg := []byte(warm.Magic + "\x00not the fingerprint\x00devbox-init\x00")
	if err := syscall.Sendmsg(fd, msg, syscall.UnixRights(0, 1, 2, 0), nil, 0); err != nil {
		t.Fatal(err)
	}
	var buf [16]byte
	n, err := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	if err != nil || string(buf[:n]) != "no\x00" { // warm.Send's "no"
		t.Errorf("a foreign request: reply %q, %v", buf[:n], err)
	}
	run(true)

	// Idle: the holders go, and take their sockets with them.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left, _ := filepath.Glob(filepath.Join(warm.Dir(rt), "h-*.sock"))
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("holder sockets left after their idle time: %v", left)
		}
	}
}

// TestRunReplay: an ephemeral run repeated with the same command line, key
// environment and directory replays the earlier run's spec without the
// CLI, and a change of any input (a variable that reaches the box, the
// config file) is seen. A run that sets box variables (-e) is never
// recorded: no environment value is written to disk.
func TestRunReplay(t *testing.T) {
	e := newEnv(t)
	args := []string{"run", "--net", "none", "busybox", "--", "sh", "-c", "echo foo=$COLORTERM; exit 3"}
	run := func(wantReplay bool, foo string, env ...string) {
		t.Helper()
		r := e.runEnv(append([]string{"DEVBOX_TRACE=1", "COLORTERM=" + foo}, env...), args...)
		if r.code != 3 || r.stdout != "foo="+foo+"\n" {
			t.Fatalf("exit %d, stdout %q (want foo=%s), stderr:\n%s", r.code, r.stdout, foo, r.stderr)
		}
		if got := strings.Contains(r.stderr, "warm: replaying"); got != wantReplay {
			t.Fatalf("replayed: %v, want %v; stderr:\n%s", got, wantReplay, r.stderr)
		}
	}
	run(false, "a")
	run(true, "a", "UNRELATED_NOISE=1") // not a variable devbox or the box reads
	run(false, "b")                     // COLORTERM reaches the box
	run(true, "b")
	cfg := filepath.Join(e.config, "devbox", "config.toml")
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(cfg, later, later); err != nil {
		t.Fatal(err)
	}
	run(false, "b")
	run(true, "b")
	// The image removed (its layers gone): the run pulls it again.
	e.ok("rmi", "busybox")
	run(false, "b")
	run(true, "b")
	run(false, "b", "DEVBOX_WARM=0")

	// A record that no holder serves (here: its start changed) is
	// abandoned before anything runs, and the CLI does the run.
	run(false, "c")
	rt := os.Getenv("XDG_RUNTIME_DIR")
	cwd, _ := os.Getwd()
	env := append(e.environ(), "DEVBOX_TRACE=1", "COLORTERM=c")
	argv := append([]string{e.bin}, args...)
	name := filepath.Join(warm.Dir(rt), warm.ReplayName(argv, warm.KeyEnviron(env, argv), cwd))
	edit := func(old, new string) {
		t.Helper()
		b, err := os.ReadFile(name)
		if err != nil || !bytes.Contains(b, []byte(old)) {
			t.Fatalf("replay record %s: %v, or no %q in it", name, err, old)
		}
		if err := os.WriteFile(name, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edit(`"Env":["`, `"Env":["STALE=1","`)
	r := e.runEnv([]string{"DEVBOX_TRACE=1", "COLORTERM=c"}, args...)
	if r.code != 3 || r.stdout != "foo=c\n" || !strings.Contains(r.stderr, "warm: replay abandoned: no holder") {
		t.Errorf("a failing record: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	run(true, "c") // recorded anew
	// A record is input: one whose box directory is not a fresh box's
	// (<store>/containers/{id}) is not used — a replay removes that
	// directory at the end, and here it names one of the user's.
	victim := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(victim, "keep"), []byte("mine"), 0o600)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	_, boxdir, _ := bytes.Cut(b, []byte(`"BoxDir":"`))
	boxdir, _, _ = bytes.Cut(boxdir, []byte(`"`))
	edit(`"BoxDir":"`+string(boxdir)+`"`, `"BoxDir":"`+victim+`"`)
	run(false, "c")
	if _, err := os.Stat(filepath.Join(victim, "keep")); err != nil {
		t.Errorf("a record naming another directory as the box's: %v", err)
	}
	run(true, "c") // recorded anew
	if ents, _ := os.ReadDir(e.store().ContainersDir()); len(ents) != 0 {
		t.Errorf("box directories left behind: %v", ents)
	}

	// The default user-mode network: the replay starts the network helper
	// too, and leaves no runtime directory behind.
	rtDirs := func() int {
		ents, _ := os.ReadDir(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox"))
		return len(ents)
	}
	before := rtDirs()
	for i, want := range []bool{false, true, true} {
		r := e.runEnv([]string{"DEVBOX_TRACE=1"}, "run", "busybox", "--", "sh", "-c", "ls /sys/class/net | grep -v '^lo$' | head -1; exit 5")
		if r.code != 5 || strings.TrimSpace(r.stdout) == "" {
			t.Errorf("run %d on the user-mode network: exit %d, stdout %q, stderr:\n%s", i, r.code, r.stdout, r.stderr)
		}
		if got := strings.Contains(r.stderr, "warm: replaying"); got != want {
			t.Errorf("run %d on the user-mode network: replayed %v, want %v", i, got, want)
		}
	}
	time.Sleep(200 * time.Millisecond) // the helpers finish on their own
	if after := rtDirs(); after > before+1 {
		t.Errorf("runtime directories: %d before, %d after three runs", before, after)
	}

	// Standard input reaches the command of a replayed run.
	for i, want := range []bool{false, true} {
		c := e.cmd("run", "--net", "none", "busybox", "--", "cat")
		c.Env = append(c.Env, "DEVBOX_TRACE=1")
		c.Stdin = strings.NewReader("through stdin\n")
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil || out.String() != "through stdin\n" {
			t.Errorf("run %d: cat: %v, stdout %q, stderr:\n%s", i, err, out.String(), errb.String())
		}
		if got := strings.Contains(errb.String(), "warm: replaying"); got != want {
			t.Errorf("run %d: replayed %v, want %v", i, got, want)
		}
	}

	// Signals reach the command of a replayed run.
	sig := []string{"run", "--net", "none", "busybox", "--", "sh", "-c", `trap "echo got; exit 4" TERM; echo ready; while :; do sleep 0.1; done`}
	for i, want := range []bool{false, true} {
		c := e.cmd(sig...)
		c.Env = append(c.Env, "DEVBOX_TRACE=1")
		var errb bytes.Buffer
		c.Stderr = &errb
		out, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		if l, err := br.ReadString('\n'); err != nil || l != "ready\n" {
			t.Fatalf("run %d: %q %v\n%s", i, l, err, errb.String())
		}
		time.Sleep(100 * time.Millisecond)
		c.Process.Signal(syscall.SIGTERM)
		rest, _ := br.ReadString('\n')
		err := c.Wait()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 4 || rest != "got\n" {
			t.Errorf("run %d: SIGTERM: exit %d, output %q, stderr:\n%s", i, code, rest, errb.String())
		}
		if got := strings.Contains(errb.String(), "warm: replaying"); got != want {
			t.Errorf("run %d: replayed %v, want %v", i, got, want)
		}
	}
}

// TestRunFailureLeavesNoRuntimeDir: a run that fails after its box and
// network helper started (here: the image cannot be pulled) removes the
// box's runtime directory, where the helper logs.
func TestRunFailureLeavesNoRuntimeDir(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox")
	names := func() map[string]bool {
		m := map[string]bool{}
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			m[ent.Name()] = true
		}
		return m
	}
	before := names()
	for i := 0; i < 3; i++ {
		if r := e.run("run", "busybox-does-not-exist", "--", "true"); r.code != 125 {
			t.Fatalf("run of a missing image: exit %d, stderr %s", r.code, r.stderr)
		}
	}
	time.Sleep(200 * time.Millisecond) // helpers that started finish on their own
	for n := range names() {
		if !before[n] && len(n) == 16 {
			t.Errorf("a failed run left %s/%s", dir, n)
		}
	}
}
