//go:build integration

package integration

// Issue 18, "the host side trusts nothing a box can write" (docs/security.md,
// "Host state"): each test is an attack by a box, or by something a box can
// write, on what devbox keeps and does on the host, with a canary that must
// stay untouched.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEscapeHostRuntimeDir: a box looks for devbox's own state in the
// runtime directory it sees ($XDG_RUNTIME_DIR/devbox: the helpers devbox
// executes, recipes and replay records, other boxes' agent sockets and
// init.pid files) and tries to plant a file there. Only the desktop
// session's sockets are in the box; a box with its own --home sees none.
func TestEscapeHostRuntimeDir(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	rt := os.Getenv("XDG_RUNTIME_DIR")
	state := filepath.Join(rt, "devbox")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	canary := plantCanary(t, state)
	defer os.Remove(canary.path)
	planted := "devbox-planted-" + filepath.Base(e.home)
	defer os.Remove(filepath.Join(state, planted))
	bus := filepath.Join(rt, "bus")
	if _, err := os.Lstat(bus); err != nil {
		listenUnix(t, bus)
	}
	script := `rt=$XDG_RUNTIME_DIR
ls -a "$rt" | sed 's/^/entry: /'
test -S "$rt/bus" && echo "bus: ok"
test -e "$rt/devbox" && echo "state: visible"
cat "$rt/devbox/` + canary.name + `" 2>/dev/null && echo "canary: read"
mkdir -p "$rt/devbox" 2>/dev/null; echo owned > "$rt/devbox/` + planted + `" 2>/dev/null
stat -c 'rt: %a %u' "$rt"
true`
	for _, tc := range []struct {
		name   string
		create []string
		bus    bool // the session bus is bound
		rtdir  bool // a private runtime directory
	}{
		{"your home", nil, true, true},
		{"own home", []string{"--home", filepath.Join(e.home, "boxhome")}, false, false},
		// A sandbox's desktop has no session bus (it starts programs on the host).
		{"own home --desktop", []string{"--home", filepath.Join(e.home, "boxhome2"), "--desktop"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box := "rt" + strings.NewReplacer(" ", "", "-", "").Replace(tc.name)
			e.ok(append([]string{"create", box, "--image", "busybox"}, tc.create...)...)
			r := e.ok("exec", box, "--", "sh", "-c", script)
			m := lines(r.stdout)
			if strings.Contains(r.stdout, "state: visible") || strings.Contains(r.stdout, "canary: read") || strings.Contains(r.stdout, "entry: devbox\n") {
				t.Errorf("devbox's state is in the box:\n%s", r.stdout)
			}
			if got := m["bus"] == "ok"; got != tc.bus {
				t.Errorf("session bus in the box: %v, want %v\n%s", got, tc.bus, r.stdout)
			}
			if tc.rtdir && !strings.HasPrefix(m["rt"], "700 ") {
				t.Errorf("the box's runtime directory: %q, want a private directory\n%s", m["rt"], r.stdout)
			}
			if _, err := os.Lstat(filepath.Join(state, planted)); err == nil {
				t.Errorf("the box wrote into %s", state)
			}
			canary.check(t)
			e.ok("rm", "-f", box)
		})
	}
}

// TestEscapeHostEnvSecrets: values given with -e/--env are secrets a run
// passes to its box; they never reach a file of devbox's (replay
// records), and such runs are not replayed.
func TestEscapeHostEnvSecrets(t *testing.T) {
	e := newEnv(t)
	secret := "devbox-secret-" + filepath.Base(e.home)
	dir := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox", "warm")
	for _, args := range [][]string{
		{"run", "--net", "none", "-e", "TOKEN=" + secret, "busybox", "--", "sh", "-c", "echo $TOKEN"},
		{"run", "--net", "none", "-eTOKEN=" + secret, "busybox", "--", "sh", "-c", "echo $TOKEN"},
		{"run", "--net", "none", "--env", "TOKEN", "busybox", "--", "sh", "-c", "echo $TOKEN"},
		{"run", "--net", "none", "--env=TOKEN", "busybox", "--", "sh", "-c", "echo $TOKEN"},
	} {
		for i := 0; i < 3; i++ {
			r := e.runEnv([]string{"DEVBOX_TRACE=1", "TOKEN=" + secret}, args...)
			if r.code != 0 || r.stdout != secret+"\n" {
				t.Fatalf("%v: exit %d, stdout %q\n%s", args, r.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "warm: replaying") {
				t.Errorf("%v was replayed (its record holds the value)", args)
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err == nil && strings.Contains(string(b), secret) {
			t.Errorf("%s holds an --env value", filepath.Join(dir, ent.Name()))
		}
	}
}

// TestEscapeHostAgentFromBox: a box that can reach its own agent socket
// (here the user bound devbox's runtime directory into it as a volume)
// asks the agent for a uid 0 session that overwrites a canary in the home.
// The agent serves only devbox on the host: a peer in the box's PID
// namespace is refused, the command never runs.
func TestEscapeHostAgentFromBox(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	img := probeImage(t, e)
	rt := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox")
	home := plantCanary(t, e.home)
	e.ok("create", "agentvictim", "--image", img, "-v", rt+":/hostrt")
	e.ok("exec", "agentvictim", "--", "true")
	var id string
	for _, b := range e.boxes() {
		if b.Name == "agentvictim" {
			id = b.ID
		}
	}
	if len(id) < 16 {
		t.Fatalf("no id for the box: %q", id)
	}
	for _, as := range []string{"user", "root"} {
		args := []string{"exec", "agentvictim", "--", "/probe", "agent", "/hostrt/" + id[:16] + "/agent.sock", "echo owned > " + home.path}
		if as == "root" {
			args = append([]string{"exec", "--root"}, args[1:]...)
		}
		r := e.ok(args...)
		m := lines(r.stdout)
		if m["connect"] != "ok" {
			t.Fatalf("the probe did not reach the agent (the test is void):\n%s%s", r.stdout, r.stderr)
		}
		if !strings.HasPrefix(m["reply"], "error ") || strings.Contains(r.stdout, "session:") {
			t.Errorf("as %s in the box, the agent answered: %q\n%s%s", as, m["reply"], r.stdout, r.stderr)
		}
		t.Logf("as %s: %s", as, m["reply"])
		home.check(t)
	}
}

// TestEscapeHostSignals: whatever can write a box's runtime files names
// another process of the user in init.pid — a bare pid, or a forged record
// with that process's real start time — and keeps a fake agent socket
// that never answers, so that stop and rm fall back to killing "the
// init". The process (a sleep) survives both.
func TestEscapeHostSignals(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "sigvictim", "--image", "busybox")
	e.ok("exec", "sigvictim", "--", "true")
	var id string
	var initPID int
	for _, b := range e.boxes() {
		if b.Name == "sigvictim" {
			id, initPID = b.ID, b.State.InitPID
		}
	}
	if len(id) < 16 || initPID <= 0 {
		t.Fatalf("box id %q, init pid %d", id, initPID)
	}
	runDir := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox", id[:16])
	e.ok("stop", "sigvictim")

	sleep := exec.Command("sleep", "300")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Process.Kill()
	exited := make(chan struct{})
	go func() { sleep.Wait(); close(exited) }()
	pid := sleep.Process.Pid
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	var pidns, userns syscall.Stat_t
	syscall.Stat(fmt.Sprintf("/proc/%d/ns/pid", pid), &pidns)
	syscall.Stat(fmt.Sprintf("/proc/%d/ns/user", pid), &userns)
	forged := fmt.Sprintf("%d %s %d %d\n", pid, f[19], pidns.Ino, userns.Ino)

	sock := filepath.Join(runDir, "agent.sock")
	os.Remove(sock)
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // a fake agent: accepts, never answers
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, tc := range []struct {
		name, pidFile string
		args          []string
	}{
		{"bare pid, stop", fmt.Sprintf("%d\n", pid), []string{"stop", "sigvictim"}},
		{"forged record, rm -f", forged, []string{"rm", "-f", "sigvictim"}},
	} {
		if err := os.WriteFile(filepath.Join(runDir, "init.pid"), []byte(tc.pidFile), 0o600); err != nil {
			t.Fatal(err)
		}
		r := e.run(tc.args...)
		t.Logf("%s: exit %d, %s", tc.name, r.code, strings.TrimSpace(r.stderr))
		select {
		case <-exited:
			t.Fatalf("%s: devbox killed an unrelated process (pid %d)", tc.name, pid)
		case <-time.After(100 * time.Millisecond):
		}
		if r.code == 0 {
			t.Errorf("%s: devbox says the box stopped", tc.name)
		}
	}
	l.Close()
	os.Remove(sock)
	e.ok("rm", "-f", "sigvictim")
}

// TestEscapeHostReadOnlyVolume: a box created with every privilege
// create can give (--cap-add SYS_ADMIN) runs a root session that tries
// each way to make its -v SRC:DST:ro volume writable — remount, mount_setattr,
// a new bind remounted, a detached clone with the flag cleared, unmounting
// it — and to append to a canary in it. The init locked the read-only
// flag (docs/security.md): every write fails, the host file is unchanged.
// A read-write volume next to it stays writable.
func TestEscapeHostReadOnlyVolume(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	img := probeImage(t, e)
	ro, rw := t.TempDir(), t.TempDir()
	os.Chmod(ro, 0o755)
	os.Chmod(rw, 0o755)
	canary := plantCanary(t, ro)
	e.ok("create", "rovictim", "--image", img, "--cap-add", "SYS_ADMIN", "-v", ro+":/ro:ro", "-v", rw+":/rw")
	r := e.ok("exec", "--root", "rovictim", "--", "/probe", "rw", "/ro", canary.name)
	t.Logf("probe:\n%s", r.stdout)
	m := lines(r.stdout)
	if m["tmpfs"] != "ok" {
		t.Fatalf("the root session cannot mount at all (the test is void):\n%s%s", r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "wrote: ") {
		t.Errorf("the box wrote through its read-only volume:\n%s", r.stdout)
	}
	canary.check(t)
	e.ok("exec", "rovictim", "--", "sh", "-c", "echo written > /rw/file")
	if b, err := os.ReadFile(filepath.Join(rw, "file")); err != nil || string(b) != "written\n" {
		t.Errorf("the read-write volume: %q %v", b, err)
	}
}

// TestEscapeHostVolumeSwap: a sandboxed box (its own --home) that has a
// volume and, through a second volume, the volume's parent, replaces the
// volume's source by a symbolic link to the user's real home, then by
// another directory. The next start refuses and names the volume; the
// canary in the home is neither read nor changed.
func TestEscapeHostVolumeSwap(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	base := t.TempDir()
	os.Chmod(base, 0o755)
	vols := filepath.Join(base, "vols")
	if err := os.MkdirAll(filepath.Join(vols, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	home := plantCanary(t, e.home)
	e.ok("create", "swapbox", "--image", "busybox", "--home", filepath.Join(base, "boxhome"),
		"-v", vols+":/parent", "-v", filepath.Join(vols, "shared")+":/shared")
	e.ok("exec", "swapbox", "--", "sh", "-c", "mv /parent/shared /parent/shared.old && ln -s "+e.home+" /parent/shared")
	e.ok("stop", "swapbox")
	if fi, err := os.Lstat(filepath.Join(vols, "shared")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the box did not plant its link (the test is void): %v", err)
	}
	attack := "cat /shared/" + home.name + "; echo owned >> /shared/" + home.name
	r := e.run("exec", "swapbox", "--", "sh", "-c", attack)
	if r.code == 0 || !strings.Contains(r.stderr, "/shared") || !strings.Contains(r.stderr, "symbolic link") {
		t.Errorf("start with a swapped volume source: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "untouched") {
		t.Errorf("the box read the canary in the home: %s", r.stdout)
	}
	home.check(t)
	// Another directory in its place (the host did it): refused too.
	os.Remove(filepath.Join(vols, "shared"))
	if err := os.Mkdir(filepath.Join(vols, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = e.run("exec", "swapbox", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "another directory") {
		t.Errorf("start with another directory as the source: exit %d\n%s", r.code, r.stderr)
	}
	// Put back, it starts.
	os.Remove(filepath.Join(vols, "shared"))
	if err := os.Rename(filepath.Join(vols, "shared.old"), filepath.Join(vols, "shared")); err != nil {
		t.Fatal(err)
	}
	e.ok("exec", "swapbox", "--", "true")
}

// listenUnix makes a unix socket at p for the test's duration.
func listenUnix(t *testing.T, p string) {
	t.Helper()
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatalf("listening on %s: %v", p, err)
	}
	t.Cleanup(func() { l.Close(); os.Remove(p) })
}

// TestEscapeHostAgentFlood: a box that reaches its agent's socket (a
// volume of the runtime directory, as in TestEscapeHostAgentFromBox)
// sends it, over 60 connections each, a 160 KiB garbage packet, an empty
// packet, an exec request and a status request, each carrying 253
// descriptors (more than the agent accepts: the kernel closes the rest,
// MSG_CTRUNC). The agent must refuse each and keep none of what it
// received: its descriptor table (FDSize in the init's /proc/PID/status,
// which only grows) stays small, where a leak of 8 descriptors a packet
// would take it past 1024; and it still serves the host.
func TestEscapeHostAgentFlood(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	img := probeImage(t, e)
	rt := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox")
	e.ok("create", "agentflood", "--image", img, "-v", rt+":/hostrt", "--grace", "120")
	e.ok("exec", "agentflood", "--", "true")
	var id string
	var initPID int
	for _, b := range e.boxes() {
		if b.Name == "agentflood" {
			id, initPID = b.ID, b.State.InitPID
		}
	}
	if len(id) < 16 || initPID == 0 {
		t.Fatalf("no id or init for the box: %q %d", id, initPID)
	}
	fdSize := func() int {
		t.Helper()
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", initPID))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "FDSize:"); ok {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatalf("no FDSize in the init's status:\n%s", b)
		return 0
	}
	before := fdSize()
	r := e.ok("exec", "--root", "agentflood", "--", "/probe", "agent-flood", "/hostrt/"+id[:16]+"/agent.sock", "60")
	m := lines(r.stdout)
	if m["sent"] != "240" || m["answered"] != "240" {
		t.Fatalf("the flood did not reach the agent (the test is void):\n%s%s", r.stdout, r.stderr)
	}
	after := fdSize()
	t.Logf("the init's FDSize: %d before, %d after", before, after)
	if after >= 1024 {
		t.Errorf("the agent kept descriptors a box sent it: FDSize %d before, %d after", before, after)
	}
	e.ok("exec", "agentflood", "--", "true")
}
