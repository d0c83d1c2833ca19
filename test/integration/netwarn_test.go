//go:build integration

package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A devbox run without ports starts its command without waiting for its
// network helper (an early start, docs/network.md). When the helper fails
// after that, the run says so on stderr, once, while the command runs; the
// exit code stays the command's, and the helper's net.log stays. A run
// whose helper is fine says nothing.

// watchedRun is a devbox run whose stdout and stderr are read line by
// line while it runs.
type watchedRun struct {
	t      *testing.T
	out    chan string // the command's stdout lines
	errs   chan string // devbox's stderr lines
	exited chan struct{}
	code   int
}

func (e *env) startWatched(t *testing.T, env []string, args ...string) *watchedRun {
	t.Helper()
	c := e.cmd(args...)
	c.Env = append(c.Env, env...)
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Files, not writers: Wait then copies nothing and returns when the
	// process exits.
	c.Stdout, c.Stderr = outW, errW
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	errW.Close()
	w := &watchedRun{t: t, out: make(chan string, 64), errs: make(chan string, 64), exited: make(chan struct{})}
	for _, p := range []struct {
		r  *os.File
		to chan string
	}{{outR, w.out}, {errR, w.errs}} {
		go func() {
			defer p.r.Close()
			defer close(p.to)
			s := bufio.NewScanner(p.r)
			for s.Scan() {
				p.to <- s.Text()
			}
		}()
	}
	go func() {
		_ = c.Wait()
		w.code = c.ProcessState.ExitCode()
		close(w.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			_ = c.Process.Kill()
			<-w.exited
		}
	})
	return w
}

// line waits up to d for the next line on ch ("", false at its end or
// after d).
func (w *watchedRun) line(ch chan string, d time.Duration) (string, bool) {
	select {
	case l, ok := <-ch:
		return l, ok
	case <-time.After(d):
		return "", false
	}
}

// running reports whether devbox has not exited yet.
func (w *watchedRun) running() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// rest waits for devbox to exit and returns the rest of its stderr.
func (w *watchedRun) rest() []string {
	var ls []string
	for l := range w.errs {
		ls = append(ls, l)
	}
	<-w.exited
	return ls
}

var netDownLog = regexp.MustCompile(`see (/\S+/net\.log); devbox run --net none to run without one\)$`)

// expectNetDown waits for the warning on w's stderr, while the command
// runs, and checks that it is said once, with why (want), that the exit
// code is the command's (code) and that the net.log it names is kept and
// says why too (wantLog, "" for no check). It returns all of stderr.
func (w *watchedRun) expectNetDown(want, wantLog string, code int) []string {
	t := w.t
	t.Helper()
	var warning string
	var before []string
	deadline := time.Now().Add(8 * time.Second)
	for warning == "" {
		l, ok := w.line(w.errs, time.Until(deadline))
		if !ok {
			t.Fatalf("no warning while the command ran (stderr so far %q, running %v)", before, w.running())
		}
		if strings.Contains(l, "network is down") {
			warning = l
		} else {
			before = append(before, l)
		}
	}
	// The command sleeps for seconds after it started: a warning only at
	// the end would come after its exit.
	if !w.running() {
		t.Errorf("the warning came only after the command ended: %q", warning)
	}
	rest := w.rest()
	t.Logf("warning: %s", warning)
	if !strings.HasPrefix(warning, "devbox: warning: the box's network is down: ") || !strings.Contains(warning, want) || strings.Count(warning, "(hint: ") != 1 {
		t.Errorf("warning %q: want the reason %q and one hint", warning, want)
	}
	for _, l := range append(before, rest...) {
		if strings.Contains(l, "network is down") {
			t.Errorf("said more than once: %q (and %q)", l, warning)
		}
	}
	if w.code != code {
		t.Errorf("exit code %d, want the command's %d", w.code, code)
	}
	m := netDownLog.FindStringSubmatch(warning)
	if m == nil {
		t.Fatalf("the warning names no net.log: %q", warning)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(m[1])) })
	b, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatalf("net.log of the failed helper was not kept: %v", err)
	}
	if wantLog != "" && !strings.Contains(string(b), wantLog) {
		t.Errorf("%s does not say %q: %q", m[1], wantLog, b)
	}
	return append(append(before, warning), rest...)
}

// TestNetHelperFailsAfterEarlyStart: the helper's stack cannot start (an
// upstream DNS server that is no address, which only the stack's DNS
// forwarder checks), after the box started its command.
func TestNetHelperFailsAfterEarlyStart(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "busybox")
	e.setConfig("[network]\ndns = [\"not-an-address\"]\n")
	w := e.startWatched(t, nil, "run", "--net", "gvisor", "busybox", "--", "sh", "-c", "echo started; sleep 4; exit 3")
	if l, ok := w.line(w.out, 60*time.Second); l != "started" {
		t.Fatalf("the box did not start: %q %v; stderr %q", l, ok, w.rest())
	}
	w.expectNetDown(`invalid DNS server "not-an-address"`, `invalid DNS server "not-an-address"`, 3)
}

// TestNetHelperDiesWhileTheBoxRuns: the helper is killed while the
// command runs, with every driver (gvisor's start is early; pasta's and
// slirp4netns's waits for the helper, which can die later all the same).
func TestNetHelperDiesWhileTheBoxRuns(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "busybox")
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) {
			requireDriver(t, d)
			// --host-loopback: a sandboxed pasta box needs it (docs/network.md).
			w := e.startWatched(t, nil, "run", "--net", d, "--host-loopback", "busybox", "--", "sh", "-c", "echo started; sleep 6; exit 4")
			if l, ok := w.line(w.out, 60*time.Second); l != "started" {
				t.Fatalf("the box did not start: %q %v; stderr %q", l, ok, w.rest())
			}
			e.killHelper(t)
			w.expectNetDown("the network helper exited unexpectedly (signal: killed)", "", 4)
		})
	}
}

// killHelper kills the network helper of the env's one running box.
func (e *env) killHelper(t *testing.T) {
	t.Helper()
	// The helper writes ports.json, with its pid, once its stack runs.
	var pid int
	deadline := time.Now().Add(5 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		for _, d := range e.runDirs() {
			var st struct {
				PID int `json:"helperPid"`
			}
			if b, err := os.ReadFile(filepath.Join(d, "ports.json")); err == nil && json.Unmarshal(b, &st) == nil {
				pid = st.PID
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatalf("the helper's ports.json was not found (runtime directories %v)", e.runDirs())
	}
	if argv, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); !strings.HasPrefix(string(argv), "devbox-net") {
		t.Fatalf("pid %d of ports.json is not the network helper: %q", pid, argv)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// TestNetHelperFineSaysNothing: a run whose helper is fine prints nothing
// of it, short or long, and leaves no runtime directory behind (in a
// private runtime directory: other devbox users of this uid have theirs).
func TestNetHelperFineSaysNothing(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "busybox")
	rt := t.TempDir()
	if err := os.Chmod(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) {
			requireDriver(t, d)
			for _, script := range []string{"true", "sleep 1; echo done"} {
				r := e.runEnv([]string{"XDG_RUNTIME_DIR=" + rt}, "run", "--net", d, "--host-loopback", "busybox", "--", "sh", "-c", script)
				if r.code != 0 || r.stderr != "" {
					t.Errorf("%q: exit %d, stderr %q", script, r.code, r.stderr)
				}
				if left, _ := filepath.Glob(filepath.Join(rt, "devbox", "*", "net.log")); len(left) != 0 {
					t.Errorf("%q left %v", script, left)
				}
			}
		})
	}
}

// TestNetHelperFailsAtABoxStart: a sandbox box (no forwarded ports: an
// early start, like devbox run's) whose helper's stack cannot start is
// started all the same, and its start says why its network is down.
func TestNetHelperFailsAtABoxStart(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("pull", "busybox")
	e.setConfig("[network]\ndns = [\"not-an-address\"]\n")
	e.ok("create", "sbnet", "--image", "busybox", "--net", "gvisor", "--home", sandboxHome(t))
	r := e.run("shell", "sbnet", "--", "echo", "ran")
	if r.code != 0 || r.stdout != "ran\n" {
		t.Fatalf("the box did not run: %d %q %q", r.code, r.stdout, r.stderr)
	}
	want := `devbox: warning: the box's network is down: gvisor driver: invalid DNS server "not-an-address" (hint: write an IP address`
	if !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "network is down") != 1 || !strings.Contains(r.stderr, "devbox stop sbnet, then start it again)") {
		t.Errorf("stderr %q: want one warning %q…", r.stderr, want)
	}
	// Started: later sessions say nothing of it.
	if r := e.run("shell", "sbnet", "--", "true"); r.code != 0 || r.stderr != "" {
		t.Errorf("a session of the running box: %d %q", r.code, r.stderr)
	}
}

// TestNetHelperDiesInAReplay: a replayed run (internal/warm) whose helper
// dies says so as devbox run does.
func TestNetHelperDiesInAReplay(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "busybox")
	args := []string{"run", "--net", "gvisor", "busybox", "--", "sh", "-c", "echo started; sleep 3; exit 4"}
	trace := []string{"DEVBOX_TRACE=1"}
	if r := e.runEnv(trace, args...); r.code != 4 || strings.Contains(r.stderr, "network is down") {
		t.Fatalf("the recorded run: exit %d, stderr %s", r.code, r.stderr)
	}
	w := e.startWatched(t, trace, args...)
	if l, ok := w.line(w.out, 60*time.Second); l != "started" {
		t.Fatalf("the box did not start: %q %v; stderr %q", l, ok, w.rest())
	}
	e.killHelper(t)
	stderr := w.expectNetDown("the network helper exited unexpectedly", "", 4)
	if !strings.Contains(strings.Join(stderr, "\n"), "warm: replaying") {
		t.Errorf("not a replay: %q", stderr)
	}
}
