//go:build integration

package integration

// The CLI keeps its word (issue 19): one test per broken promise, each
// written as the user's command and what they observe.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/cgroup"
)

// psListing is one row of devbox ps --json.
type psListing struct {
	boxListing
	Status  string `json:"status"`
	Run     bool   `json:"run"`
	RunPID  int    `json:"runPid"`
	Network *struct {
		Ports []portJSON `json:"ports"`
	} `json:"network"`
}

func (e *env) ps() []psListing {
	e.t.Helper()
	var out []psListing
	r := e.ok("ps", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("ps --json: %v: %s", err, r.stdout)
	}
	return out
}

// 1. A kept run is a box: listed, reachable by shell, exec, inspect and rm;
// its name is taken; prune removes it.
func TestPromiseKeptRunIsABox(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("run", "--name", "tmp1", "busybox", "--", "sh", "-c", "echo x > /marker")
	bs := e.boxes()
	if len(bs) != 1 || bs[0].Name != "tmp1" {
		t.Fatalf("devbox ls after run --name tmp1: %+v", bs)
	}
	if r := e.ok("shell", "tmp1", "--", "cat", "/marker"); r.stdout != "x\n" {
		t.Errorf("shell tmp1 -- cat /marker: %q", r.stdout)
	}
	if r := e.ok("exec", "tmp1", "--", "cat", "/marker"); r.stdout != "x\n" {
		t.Errorf("exec tmp1 -- cat /marker: %q", r.stdout)
	}
	// Still a sandbox: a home of its own, not the user's.
	if r := e.ok("exec", "tmp1", "--", "sh", "-c", "ls -A ~ | wc -l"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("the kept run's home is not its own empty one: %q", r.stdout)
	}
	if r := e.ok("inspect", "tmp1"); !strings.Contains(r.stdout, `"name": "tmp1"`) {
		t.Errorf("inspect tmp1: %s", r.stdout)
	}
	r := e.run("run", "--name", "tmp1", "busybox", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, `a box named "tmp1" already exists`) || !strings.Contains(r.stderr, "devbox rm tmp1") {
		t.Errorf("second run --name tmp1: exit %d %q", r.code, r.stderr)
	}
	e.ok("rm", "tmp1")
	if bs := e.boxes(); len(bs) != 0 {
		t.Errorf("ls after rm tmp1: %+v", bs)
	}
	// --keep without a name: kept under a name devbox prints; prune -f
	// removes it, directory and all.
	r = e.ok("run", "--keep", "busybox", "--", "true")
	if !strings.Contains(r.stderr, "kept as box run-") {
		t.Errorf("run --keep does not say which box it kept: %q", r.stderr)
	}
	bs = e.boxes()
	if len(bs) != 1 || !strings.HasPrefix(bs[0].Name, "run-") {
		t.Fatalf("ls after run --keep: %+v", bs)
	}
	e.ok("prune", "-f")
	if _, err := os.Stat(bs[0].Dir); !os.IsNotExist(err) {
		t.Errorf("prune -f left the kept run's directory %s: %v", bs[0].Dir, err)
	}
	if bs := e.boxes(); len(bs) != 0 {
		t.Errorf("ls after prune -f: %+v", bs)
	}
}

// 2. Flags between NAME and -- are devbox's; after -- they are the
// command's; --help after NAME shows help; enter is shell.
func TestPromiseFlagsAfterBoxName(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "dev", "--image", "busybox")
	if r := e.ok("shell", "dev", "--root", "--", "id", "-u"); r.stdout != "0\n" {
		t.Errorf("shell dev --root -- id -u: %q", r.stdout)
	}
	if r := e.ok("exec", "dev", "--root", "--", "id", "-u"); r.stdout != "0\n" {
		t.Errorf("exec dev --root -- id -u: %q", r.stdout)
	}
	if r := e.ok("exec", "dev", "-T", "--", "sh", "-c", "test -t 0 || echo no-tty"); r.stdout != "no-tty\n" {
		t.Errorf("exec dev -T: %q", r.stdout)
	}
	// The command's own flags, with or without --.
	if r := e.ok("exec", "dev", "ls", "-d", "/"); r.stdout != "/\n" {
		t.Errorf("exec dev ls -d /: %q", r.stdout)
	}
	if r := e.run("shell", "dev", "--", "--root"); r.code != 127 {
		t.Errorf("shell dev -- --root: exit %d, want 127 (the command's)", r.code)
	}
	for _, args := range [][]string{{"shell", "web", "--help"}, {"shell", "dev", "--help"}, {"exec", "dev", "--help"}} {
		r := e.run(args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("devbox %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := e.run("exec", "dev", "--bogus", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "unknown flag: --bogus") {
		t.Errorf("exec dev --bogus: exit %d %q", r.code, r.stderr)
	}
	// --image after a new NAME creates the box from it.
	if r := e.ok("shell", "fresh", "--image", "busybox", "--", "echo", "created"); r.stdout != "created\n" {
		t.Errorf("shell fresh --image busybox: %q", r.stdout)
	}
	if r := e.ok("enter", "dev", "--", "echo", "entered"); r.stdout != "entered\n" {
		t.Errorf("enter dev: %q", r.stdout)
	}
}

// 3. Creation flags for an existing box are not silently ignored.
func TestPromiseCreationFlagsOnExistingBox(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "web", "--image", "busybox")
	// Repeating what the box has is fine (create-or-enter scripts).
	e.ok("shell", "--image", "busybox", "web", "--", "true")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"shell", "--image", "debian", "web", "--", "true"}, "devbox rm web && devbox create web --image debian"},
		{[]string{"shell", "web", "-p", "18081:80", "--", "true"}, "--publish 18081:80"},
		{[]string{"shell", "web", "--net", "none", "--", "true"}, "--net none"},
		{[]string{"shell", "web", "-v", "/tmp:/x", "--", "true"}, "--volume /tmp:/x"},
		{[]string{"shell", "web", "--memory", "1g", "--", "true"}, "devbox update web --memory"},
	}
	for _, c := range cases {
		r := e.run(c.args...)
		if r.code != 125 || r.stdout != "" || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("devbox %v: exit %d stdout %q stderr %q; want 125, nothing run, and %q", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
	if r := e.ok("inspect", "web"); !strings.Contains(r.stdout, "library/busybox") {
		t.Errorf("the box changed: %s", r.stdout)
	}
}

// 4. stats and update where boxes get no cgroup: the reason once; a
// missing name is no such box; piped stats prints one sample.
func TestPromiseLimitsCommandsSayWhy(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	_, noCgroups := cgroup.Decide(cgroup.DetectHost(), cgroup.Limits{PidsLimit: 1 << 20})
	e.ok("create", "web", "--image", "busybox", "--grace", "30")
	e.ok("shell", "web", "--", "true")
	// Piped, without --no-stream: one sample, then exit.
	c := e.cmd("stats")
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.Process.Kill()
		<-done
		t.Fatalf("piped devbox stats did not exit: %q", out.String())
	}
	if noCgroups != nil {
		msg := strings.TrimSpace(errb.String())
		if c.ProcessState.ExitCode() != 125 || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "have no cgroup") || !strings.Contains(msg, "(hint: ") {
			t.Errorf("stats without cgroups: exit %d stdout %q stderr %q", c.ProcessState.ExitCode(), out.String(), msg)
		}
		r := e.run("update", "web", "--memory", "2g")
		if r.code != 125 || !strings.Contains(r.stderr, "have no cgroup") || strings.Contains(r.stderr, "devbox stats lists") {
			t.Errorf("update of a running box without cgroups: exit %d %q", r.code, r.stderr)
		}
	} else if c.ProcessState.ExitCode() != 0 || strings.Count(out.String(), "NAME") != 1 {
		t.Errorf("piped stats: exit %d, %q", c.ProcessState.ExitCode(), out.String())
	}
	if r := e.run("update", "nosuch", "--memory", "1g"); r.code != 125 || !strings.Contains(r.stderr, `no such box "nosuch"`) {
		t.Errorf("update nosuch: exit %d %q", r.code, r.stderr)
	}
	if r := e.run("stats", "nosuch"); r.code != 125 || !strings.Contains(r.stderr, `no such box "nosuch"`) {
		t.Errorf("stats nosuch: exit %d %q", r.code, r.stderr)
	}
}

// onTerminal runs devbox with stdin and stdout on a new terminal and
// returns what the terminal showed and the exit code.
func (e *env) onTerminal(args ...string) (string, int) {
	e.t.Helper()
	m, s := openPTY(e.t)
	defer m.Close()
	c := e.cmd(args...)
	c.Stdin, c.Stdout = s, s
	var errb bytes.Buffer
	c.Stderr = &errb
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	s.Close()
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				close(read)
				return
			}
		}
	}()
	err := c.Wait()
	select {
	case <-read:
	case <-time.After(2 * time.Second):
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return out.String() + errb.String(), code
}

// 5. exec allocates a terminal when stdin and stdout are terminals; -it
// works on run and exec.
func TestPromiseExecTerminal(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "dev", "--image", "busybox", "--grace", "30")
	for _, args := range [][]string{
		{"exec", "dev", "--", "tty"},
		{"exec", "-it", "dev", "--", "tty"},
		{"exec", "dev", "-it", "--", "tty"},
		{"shell", "dev", "--", "tty"},
	} {
		out, code := e.onTerminal(args...)
		if code != 0 || !strings.Contains(out, "/dev/pts/") {
			t.Errorf("devbox %v on a terminal: exit %d, %q; want a terminal", args, code, out)
		}
	}
	out, code := e.onTerminal("run", "-it", "busybox", "--", "sh", "-c", "test -t 0 && test -t 1 && echo both-terminals")
	if code != 0 || !strings.Contains(out, "both-terminals") {
		t.Errorf("run -it on a terminal: exit %d %q", code, out)
	}
	// Piped: no terminal unless -t.
	if r := e.run("exec", "dev", "--", "sh", "-c", "test -t 0 || echo piped"); r.stdout != "piped\n" {
		t.Errorf("piped exec: %q %q", r.stdout, r.stderr)
	}
	if r := e.run("exec", "-t", "dev", "--", "tty"); !strings.Contains(r.stdout, "/dev/pts/") {
		t.Errorf("exec -t: %q %q", r.stdout, r.stderr)
	}
	if r := e.run("exec", "-i", "dev", "--", "cat"); r.code != 0 {
		t.Errorf("exec -i: exit %d %q", r.code, r.stderr)
	}
}

// 6. stop waits until the box is down, sessions say why they ended; rm
// right after a session stops the idle box itself; leaving processes
// behind is announced.
func TestPromiseStopAndRm(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "dev", "--image", "busybox", "--grace", "30")
	sess := e.cmd("shell", "dev", "--", "sleep", "60")
	var serr bytes.Buffer
	sess.Stderr = &serr
	if err := sess.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() { sess.Wait(); close(ended) }()
	for i := 0; i < 200; i++ {
		if bs := e.boxes(); len(bs) == 1 && bs[0].State.Sessions == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.ok("stop", "dev")
	select {
	case <-ended:
	case <-time.After(500 * time.Millisecond):
		t.Errorf("the session still runs after devbox stop returned")
		<-ended
	}
	if bs := e.boxes(); bs[0].State.Running {
		t.Errorf("running after stop: %+v", bs[0])
	}
	if !strings.Contains(serr.String(), "box dev stopped (devbox stop)") {
		t.Errorf("the ended session did not say why: %q", serr.String())
	}
	// Processes left behind when the last session leaves are announced;
	// nothing is said when none are.
	if r := e.ok("shell", "dev", "--", "true"); r.stderr != "" {
		t.Errorf("no job left, yet: %q", r.stderr)
	}
	r := e.ok("shell", "dev", "--", "sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & exit 0")
	if !strings.Contains(r.stderr, "1 process(es) still running in box dev") || !strings.Contains(r.stderr, "30 s") {
		t.Errorf("leaving a background job: %q", r.stderr)
	}
	// rm right after a session: the idle box is stopped and removed.
	e.ok("shell", "dev", "--", "true")
	if r := e.run("rm", "dev"); r.code != 0 {
		t.Errorf("rm right after a session: exit %d %q", r.code, r.stderr)
	}
	// A box with a session needs -f.
	e.ok("create", "busy", "--image", "busybox")
	busy := e.cmd("shell", "busy", "--", "sleep", "60")
	busy.Start()
	defer func() { busy.Process.Kill(); busy.Wait() }()
	for i := 0; i < 200; i++ {
		if bs := e.boxes(); len(bs) == 1 && bs[0].State.Sessions == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := e.run("rm", "busy"); r.code != 125 || !strings.Contains(r.stderr, "rm -f busy") {
		t.Errorf("rm of a box with a session: exit %d %q", r.code, r.stderr)
	}
}

// 7. A background run is listed by ps (and ls --all) with its ports, and
// stop ends it.
func TestPromiseBackgroundRunsListed(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "-q", "busybox")
	port := freePort(t)
	bg := e.cmd("run", "-p", fmt.Sprintf("%d:80", port), "busybox", "--", "sh", "-c", "trap 'echo got-term; exit 3' TERM; while :; do sleep 1; done")
	var out bytes.Buffer
	bg.Stdout = &out
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() { bg.Wait(); close(ended) }()
	defer func() {
		select {
		case <-ended:
		default:
			bg.Process.Kill()
			<-ended
		}
	}()
	var run *psListing
	for i := 0; i < 200 && run == nil; i++ {
		for _, l := range e.ps() {
			if l.Run && l.Name == "" && l.Network != nil && len(l.Network.Ports) > 0 {
				run = &l
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if run == nil {
		t.Fatalf("devbox ps does not list the background run: %s", e.ok("ps").stdout)
	}
	if p := run.Network.Ports[0]; p.HostPort != port || p.BoxPort != 80 {
		t.Errorf("ports: %+v", run.Network.Ports)
	}
	if r := e.ok("ls", "--all"); !strings.Contains(r.stdout, run.ID[:12]) || !strings.Contains(r.stdout, fmt.Sprintf("127.0.0.1:%d->80/tcp", port)) {
		t.Errorf("ls --all: %q", r.stdout)
	}
	if r := e.ok("ls"); strings.Contains(r.stdout, run.ID[:12]) {
		t.Errorf("plain ls lists the ephemeral run: %q", r.stdout)
	}
	e.ok("stop", run.ID[:12])
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the run still runs after devbox stop returned")
	}
	if bg.ProcessState.ExitCode() != 3 || !strings.Contains(out.String(), "got-term") {
		t.Errorf("the run's command did not get SIGTERM: exit %d %q", bg.ProcessState.ExitCode(), out.String())
	}
	for _, l := range e.ps() {
		if l.Run {
			t.Errorf("still listed after stop: %+v", l)
		}
	}
}

// 8. One naming rule for create and shell; manifest unknown is not found;
// rmi refuses an image boxes use; relative -v.
func TestPromiseConsistency(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	for _, verb := range []string{"create", "shell"} {
		r := e.run(verb, "web3")
		if r.code != 125 || !strings.Contains(r.stderr, "not an alias") || strings.Contains(r.stderr, "Pulling") {
			t.Errorf("devbox %s web3: exit %d %q; want the not-an-alias refusal, no pull", verb, r.code, r.stderr)
		}
	}
	r := e.run("pull", "nosuchimage-xyz")
	if r.code != 125 || !strings.Contains(r.stderr, "image not found") || !strings.Contains(r.stderr, "check the name") {
		t.Errorf("pull of a missing image: exit %d %q", r.code, r.stderr)
	}
	work := filepath.Join(e.home, "proj")
	os.MkdirAll(filepath.Join(work, "src"), 0o755)
	os.WriteFile(filepath.Join(work, "src", "f"), []byte("relative\n"), 0o644)
	c := e.cmd("create", "rel", "--image", "busybox", "-v", "./src:/src")
	c.Dir = work
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("create -v ./src:/src: %v %s", err, out)
	}
	if r := e.ok("exec", "rel", "--", "cat", "/src/f"); r.stdout != "relative\n" {
		t.Errorf("relative volume: %q", r.stdout)
	}
	r = e.run("rmi", "busybox")
	if r.code != 125 || !strings.Contains(r.stderr, "used by box(es) rel") {
		t.Errorf("rmi of an image a box uses: exit %d %q", r.code, r.stderr)
	}
	e.ok("rmi", "-f", "busybox")
	e.ok("image", "prune")
	e.ok("stop", "rel")
	if r := e.ok("exec", "rel", "--", "cat", "/src/f"); r.stdout != "relative\n" {
		t.Errorf("the box after rmi -f and image prune: %q", r.stdout)
	}
}

// 9. run says what it is: the image's user in its directory, without the
// caller's home or directory; the README's examples say so too.
func TestPromiseRunSaysWhatItIs(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "-q", "busybox")
	os.WriteFile(filepath.Join(e.home, "mine"), []byte("x"), 0o644)
	c := e.cmd("run", "busybox", "--", "sh", "-c", "pwd; test -e "+filepath.Join(e.home, "mine")+" && echo home-visible; true")
	c.Dir = e.home
	out, err := c.Output()
	if err != nil || string(out) != "/\n" {
		t.Errorf("run from the home directory: %v %q; want / and no home", err, out)
	}
	if r := e.ok("run", "--help"); !strings.Contains(r.stdout, "without your home or current directory") || !strings.Contains(r.stdout, "devbox shell NAME -- make") {
		t.Errorf("run --help does not say what run is: %q", r.stdout)
	}
}
