//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type boxListing struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Image   string `json:"image"`
	Dir     string `json:"dir"`
	Home    string `json:"home"`
	Volumes []struct {
		Source, Target string
	} `json:"volumes"`
	State struct {
		Running  bool `json:"running"`
		Sessions int  `json:"sessions"`
		InitPID  int  `json:"initPid"`
	} `json:"state"`
}

func (e *env) boxes() []boxListing {
	e.t.Helper()
	var out []boxListing
	r := e.ok("ls", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("ls --json: %v: %s", err, r.stdout)
	}
	return out
}

// stopAll stops every box of the env (registered by tests that start boxes).
func (e *env) stopBoxesAtCleanup() {
	e.t.Cleanup(func() {
		for _, b := range e.boxes() {
			e.run("rm", "-f", b.Name)
		}
	})
}

func TestShellIsYourself(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	me, _ := user.Current()
	work := filepath.Join(e.home, "project")
	os.MkdirAll(work, 0o755)
	os.WriteFile(filepath.Join(work, "README"), []byte("mine\n"), 0o644)
	c := e.cmd("shell", "debian", "--", "sh", "-c", "id -un; id -u; id -g; echo $HOME; pwd; cat README; hostname; echo $USER")
	c.Dir = work
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := strings.Split(strings.TrimSpace(lastLines(string(out), 8)), "\n")
	want := []string{me.Username, me.Uid, me.Gid, e.home, work, "mine", "debian", me.Username}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("in the box:\n got %q\nwant %q", got, want)
	}
	// --root is the box's root (the user's first subuid on the host).
	if r := e.ok("shell", "--root", "debian", "--", "id", "-u"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("--root: %q", r.stdout)
	}
	// Exit codes pass through; exec works on the same box.
	if r := e.run("shell", "debian", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exit code %d, want 7", r.code)
	}
	if r := e.ok("exec", "debian", "--", "cat", "/etc/debian_version"); !strings.HasPrefix(r.stdout, "13") {
		t.Errorf("exec: %q", r.stdout)
	}
	if r := e.run("exec", "nosuchbox", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("exec on a missing box: %d %q", r.code, r.stderr)
	}
	if r := e.run("shell", "fedroa"); r.code != 125 || !strings.Contains(r.stderr, `"fedora"`) {
		t.Errorf("typo of an alias: %d %q", r.code, r.stderr)
	}
	// The account exists in the box's files, with a sudoers drop-in.
	r := e.ok("shell", "--root", "debian", "--", "sh", "-c", "grep ^"+me.Username+": /etc/passwd; cat /etc/sudoers.d/devbox-"+me.Username)
	if !strings.Contains(r.stdout, ":"+me.Uid+":"+me.Gid+":") || !strings.Contains(r.stdout, "NOPASSWD") {
		t.Errorf("account files: %q", r.stdout)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func TestBoxStatePersistsAndSessionsShareTheBox(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "dev", "--image", "debian", "--grace", "30")
	e.ok("shell", "--root", "dev", "--", "sh", "-c", "echo installed > /usr/local/bin/tool && chmod 755 /usr/local/bin/tool")
	// A second session joins the running box: same PID namespace, same /tmp.
	first := e.cmd("shell", "dev", "--", "sh", "-c", "echo $$ > /tmp/first-shell; exec sleep 5")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	var r result
	for i := 0; i < 100; i++ {
		r = e.run("shell", "dev", "--", "sh", "-c", "cat /tmp/first-shell && for p in /proc/[0-9]*; do echo \"${p#/proc/} $(cat $p/comm)\"; done")
		if r.code == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 2 || !strings.Contains(r.stdout, "\n"+strings.TrimSpace(lines[0])+" sleep\n") {
		t.Errorf("second shell does not see the first one's process and /tmp:\n%s\n%s", r.stdout, r.stderr)
	}
	if bs := e.boxes(); len(bs) != 1 || !bs[0].State.Running || bs[0].State.Sessions < 1 {
		t.Errorf("ls: %+v", bs)
	}
	first.Process.Kill()
	first.Wait()
	// Stop, start again: the package is still installed.
	e.ok("stop", "dev")
	if bs := e.boxes(); bs[0].State.Running {
		t.Error("box still running after stop")
	}
	if r := e.ok("shell", "dev", "--", "cat", "/usr/local/bin/tool"); r.stdout != "installed\n" {
		t.Errorf("after stop: %q", r.stdout)
	}
	// A reboot: the init dies with the machine and the runtime directory
	// is emptied. The next shell starts the box again, state intact.
	bs := e.boxes()
	if bs[0].State.InitPID > 0 {
		syscall.Kill(bs[0].State.InitPID, syscall.SIGKILL)
	}
	for i := 0; i < 100 && e.boxes()[0].State.Running; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if r := e.ok("shell", "dev", "--", "cat", "/usr/local/bin/tool"); r.stdout != "installed\n" {
		t.Errorf("after a crash: %q", r.stdout)
	}
}

func TestBoxStopsAfterLastSession(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "brief", "--image", "busybox", "--grace", "1")
	e.ok("shell", "brief", "--", "true")
	if !e.boxes()[0].State.Running {
		t.Fatal("box not running right after a session")
	}
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) && e.boxes()[0].State.Running {
		time.Sleep(100 * time.Millisecond)
	}
	if e.boxes()[0].State.Running {
		t.Error("box still running 6 s after its last session with --grace 1")
	}
	// Busybox has no bash: the login shell falls back to sh.
	c := e.cmd("shell", "brief")
	c.Stdin = strings.NewReader("echo shell=$0\n")
	out, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "shell=-sh") {
		t.Errorf("login shell: %v %q", err, out)
	}
}

func TestConcurrentShellsCreateOneBox(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("pull", "-q", "busybox")
	var wg sync.WaitGroup
	res := make([]result, 3)
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = e.run("shell", "busybox", "--", "sh", "-c", "echo ok")
		}(i)
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 || r.stdout != "ok\n" {
			t.Errorf("shell %d: exit %d %q %q", i, r.code, r.stdout, r.stderr)
		}
	}
	if bs := e.boxes(); len(bs) != 1 {
		t.Errorf("%d boxes, want 1: %+v", len(bs), bs)
	}
	// Two boxes of one image share its layers: the second adds almost nothing.
	e.ok("create", "second", "--image", "busybox")
	e.ok("shell", "second", "--", "true")
	var size int64
	filepath.Walk(e.boxDir("second"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	if size > 1<<20 {
		t.Errorf("an extra box of the same image adds %d bytes", size)
	}
}

func (e *env) boxDir(name string) string {
	for _, b := range e.boxes() {
		if b.Name == name {
			return b.Dir
		}
	}
	e.t.Fatalf("no box %s", name)
	return ""
}

// treeSums hashes every file under dir (path → mode+content digest).
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, _ := d.Info()
		sum := fmt.Sprint(fi.Mode())
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err == nil {
				h := sha256.New()
				io.Copy(h, f)
				f.Close()
				sum += hex.EncodeToString(h.Sum(nil))
			}
		}
		if d.Type()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			sum += "->" + l
		}
		out[p] = sum
		return nil
	})
	return out
}

// TestRmNeverTouchesHomeOrVolumes: rm -f of a running box whose home and a
// volume are mounted leaves every file outside the box store intact.
func TestRmNeverTouchesHomeOrVolumes(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	boxHome := filepath.Join(e.home, "boxhome")
	vol := filepath.Join(e.home, "volume")
	for _, d := range []string{boxHome, vol, filepath.Join(vol, "sub")} {
		os.MkdirAll(d, 0o755)
	}
	for i := 0; i < 20; i++ {
		os.WriteFile(filepath.Join(boxHome, fmt.Sprintf("f%d", i)), []byte(strings.Repeat("h", i*100)), 0o644)
		os.WriteFile(filepath.Join(vol, "sub", fmt.Sprintf("v%d", i)), []byte(strings.Repeat("v", i*100)), 0o600)
	}
	os.Symlink("/etc/passwd", filepath.Join(vol, "link"))
	before := treeSums(t, e.home)
	e.ok("create", "risky", "--image", "debian", "--home", boxHome, "-v", vol+":/data", "--grace", "60")
	r := e.ok("shell", "risky", "--", "sh", "-c", "ls ~ | wc -l; ls /data/sub | wc -l")
	if strings.Fields(r.stdout)[0] != "20" || strings.Fields(r.stdout)[1] != "20" {
		t.Fatalf("home and volume not mounted: %q", r.stdout)
	}
	long := e.cmd("shell", "risky", "--", "sleep", "30")
	long.Start()
	defer func() { long.Process.Kill(); long.Wait() }()
	time.Sleep(300 * time.Millisecond)
	if r := e.run("rm", "risky"); r.code != 125 || !strings.Contains(r.stderr, "running") {
		t.Errorf("rm of a running box: exit %d %q", r.code, r.stderr)
	}
	e.ok("rm", "-f", "risky")
	after := treeSums(t, e.home)
	for p, s := range before {
		if after[p] != s {
			t.Errorf("%s changed or vanished", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("home tree had %d entries, now %d", len(before), len(after))
	}
	if len(e.boxes()) != 0 {
		t.Error("box still listed")
	}
}

// TestDesktopIntegration proves each binding with stand-ins: sockets at the
// right places and the session variables.
func TestDesktopIntegration(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt == "" {
		t.Fatal("XDG_RUNTIME_DIR is not set (make test sets it to /run/user/UID)")
	}
	n := rand.Intn(1000) + 100
	listen := func(p string) {
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.Remove(p)
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatalf("listening on %s: %v", p, err)
		}
		t.Cleanup(func() { l.Close(); os.Remove(p) })
	}
	x11 := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
	if err := os.MkdirAll("/tmp/.X11-unix", 0o1777); err != nil {
		t.Fatal(err)
	}
	os.Chmod("/tmp/.X11-unix", 0o1777) // as an X server leaves it (no-op when it is not ours)
	listen(x11)
	wayland := fmt.Sprintf("wayland-devbox-%d", n)
	listen(filepath.Join(rt, wayland))
	listen(filepath.Join(rt, "pipewire-0"))
	listen(filepath.Join(rt, "pulse", "native"))
	listen(filepath.Join(rt, "bus"))
	sshDir := t.TempDir()
	ssh := filepath.Join(sshDir, "agent.sock")
	listen(ssh)
	vars := []string{
		"DISPLAY=:" + strconv.Itoa(n), "WAYLAND_DISPLAY=" + wayland, "XDG_RUNTIME_DIR=" + rt,
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(rt, "bus"), "SSH_AUTH_SOCK=" + ssh,
		"TERM=xterm-devbox", "COLORTERM=truecolor", "LANG=C.UTF-8", "LC_TIME=C", "TZ=Europe/Paris",
	}
	script := `for s in "$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY" "$XDG_RUNTIME_DIR/pipewire-0" "$XDG_RUNTIME_DIR/pulse/native" "${DBUS_SESSION_BUS_ADDRESS#unix:path=}" "$SSH_AUTH_SOCK" "/tmp/.X11-unix/X${DISPLAY#:}"; do test -S "$s" && echo "ok $s" || echo "missing $s"; done
echo "DISPLAY=$DISPLAY TERM=$TERM COLORTERM=$COLORTERM LANG=$LANG LC_TIME=$LC_TIME TZ=$TZ"
cmp -s /etc/localtime /etc/localtime.host 2>/dev/null; test -e /etc/localtime && echo "localtime present"`
	c := e.cmd("shell", "debian", "--", "sh", "-c", script)
	c.Env = append(c.Env, vars...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if strings.Contains(s, "missing") || strings.Count(s, "ok ") != 6 {
		t.Errorf("session sockets in the box:\n%s", s)
	}
	want := fmt.Sprintf("DISPLAY=:%d TERM=xterm-devbox COLORTERM=truecolor LANG=C.UTF-8 LC_TIME=C TZ=Europe/Paris", n)
	if !strings.Contains(s, want) {
		t.Errorf("session variables: %s\nwant %s", s, want)
	}
	if _, err := os.Stat("/etc/localtime"); err == nil && !strings.Contains(s, "localtime present") {
		t.Errorf("host timezone not in the box: %s", s)
	}
	// The attack a sandbox with --desktop stops: through the session bus
	// (systemd-run --user), X11 (keystrokes into a terminal) or the SSH
	// agent (your keys) a box could act on the host as you, and through
	// PulseAudio's load-module or PipeWire's factories it could load code
	// into your audio server. A box with a home of its own and --desktop
	// gets Wayland, none of those; with --audio it gets PipeWire and
	// PulseAudio too.
	for _, c := range []struct {
		name  string
		audio bool
	}{{"sbdesk", false}, {"sbaudio", true}} {
		sbHome := t.TempDir()
		os.Chmod(sbHome, 0o755)
		args := []string{"create", c.name, "--image", "debian", "--home", sbHome, "--desktop"}
		if c.audio {
			args = append(args, "--audio")
		}
		e.ok(args...)
		cmd := e.cmd("shell", c.name, "--", "sh", "-c", script+`
for s in "$XDG_RUNTIME_DIR/bus" "`+ssh+`" "/tmp/.X11-unix/X`+strconv.Itoa(n)+`"; do test -e "$s" && echo "reached $s"; done
echo "PULSE_SERVER=$PULSE_SERVER"; true`)
		cmd.Env = append(cmd.Env, append(vars, "PULSE_SERVER=unix:"+filepath.Join(rt, "pulse", "native"))...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		s := string(out)
		if strings.Contains(s, "reached") || !strings.Contains(s, "ok "+filepath.Join(rt, wayland)) || strings.Contains(s, "DISPLAY=:") {
			t.Errorf("%s: a sandbox with --desktop reaches what runs programs on the host, or lacks Wayland:\n%s", c.name, s)
		}
		audio := []string{filepath.Join(rt, "pipewire-0"), filepath.Join(rt, "pulse", "native")}
		for _, a := range audio {
			if got := strings.Contains(s, "ok "+a); got != c.audio {
				t.Errorf("%s (--audio %v): the audio socket %s bound: %v\n%s", c.name, c.audio, a, got, s)
			}
		}
		if got := !strings.Contains(s, "PULSE_SERVER=\n"); got != c.audio {
			t.Errorf("%s (--audio %v): PULSE_SERVER passed: %v\n%s", c.name, c.audio, got, s)
		}
	}
	if r := e.run("create", "sbbad", "--image", "debian", "--home", t.TempDir(), "--audio"); r.code != 125 || !strings.Contains(r.stderr, "--audio goes with") {
		t.Errorf("--audio without --desktop: exit %d %q", r.code, r.stderr)
	}
	// A variable that is not part of the session does not leak in.
	c = e.cmd("shell", "debian", "--", "env")
	c.Env = append(c.Env, "SECRET_TOKEN=hunter2")
	out, _ = c.CombinedOutput()
	if strings.Contains(string(out), "hunter2") {
		t.Error("a host secret leaked into the box's environment")
	}
}

// TestBoxErrors covers bad input to the box commands.
func TestBoxErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"create", "x", "--image", "busybox", "-v", "relative:/data"}, "absolute"},
		{[]string{"create", "x", "--image", "busybox", "-v", "/nonexistent-dir-xyz:/data"}, "does not exist"},
		{[]string{"create", "x", "--image", "busybox", "-v", "/tmp:/data:rx"}, "ro or rw"},
		{[]string{"create", "x", "--image", "busybox", "--net", "bridge"}, "invalid --net"},
		{[]string{"create", "bad/name", "--image", "busybox"}, "invalid box name"},
		{[]string{"stop", "ghost"}, "no such box"},
		{[]string{"rm", "ghost"}, "no such box"},
		{[]string{"inspect", "ghost"}, "no such box"},
	}
	for _, c := range cases {
		r := e.run(c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("devbox %v: exit %d %q, want failure containing %q", c.args, r.code, r.stderr, c.want)
		}
	}
	e.ok("create", "dup", "--image", "busybox")
	if r := e.run("create", "dup", "--image", "busybox"); r.code != 125 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("duplicate create: %d %q", r.code, r.stderr)
	}
	e.ok("rm", "dup")
	var _ = exec.Command
}
