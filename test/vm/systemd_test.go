//go:build vm

package vm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/cgroup"
)

// The TestSystemd tests run in the rig's second guest: Debian with systemd
// as PID 1, the user "dev" lingering (so user@1000.service and its user bus
// run), and the suite started from a system service that dev does not own,
// as from an ssh or console login. devbox must start a transient scope with
// Delegate=yes through the user bus.

const userManager = "/user.slice/user-1000.slice/user@1000.service"

var scopeBox = regexp.MustCompile(`^` + regexp.QuoteMeta(userManager) + `/app\.slice/(devbox-[0-9a-f]{12}\.scope)/devbox-[0-9a-f]{32}$`)

func requireUserBus(t *testing.T) {
	t.Helper()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Fatal("no user bus: the TestSystemd tests run in the rig's systemd guest")
	}
	setup(t)
}

// waitGone waits for a cgroup to disappear (systemd collects a scope once
// its last process has exited).
func waitGone(cg string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if gone(cg) {
			return true
		}
	}
	return gone(cg)
}

// TestSystemdScope: the box runs in <user manager>/app.slice/devbox-<id>.scope/devbox-<id>,
// the scope is delegated to the user and the CLI waits in its leaf, limits
// apply, and the scope is gone after the box.
func TestSystemdScope(t *testing.T) {
	requireUserBus(t)
	c := devboxCmd("run", "--name", "sd", "--memory", "64m", "--pids-limit", "50", imageRef, "--", "sleep", "600")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}()
	row := statsOf(t, "sd")
	m := scopeBox.FindStringSubmatch(row.Cgroup)
	if m == nil {
		t.Fatalf("box cgroup %s, want %s/app.slice/devbox-<id12>.scope/devbox-<id>", row.Cgroup, userManager)
	}
	scope := filepath.Dir(row.Cgroup)
	fi, err := os.Stat(filepath.Join(cgroupRoot, scope))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != uint32(os.Getuid()) {
		t.Errorf("scope %s belongs to uid %d: not delegated", scope, uid)
	}
	leaf := readFile(t, scope+"/"+cgroup.LeafName, "cgroup.procs")
	if !strings.Contains("\n"+leaf+"\n", "\n"+strconv.Itoa(c.Process.Pid)+"\n") {
		t.Errorf("the devbox CLI (pid %d) is not in the scope's leaf: %q", c.Process.Pid, leaf)
	}
	limitsAndUpdate(t, "sd", row.Cgroup)
	t.Logf("box in %s", row.Cgroup)
	c.Process.Signal(syscall.SIGTERM)
	c.Wait()
	if !waitGone(scope, 10*time.Second) {
		t.Errorf("scope %s is left after the box stopped", scope)
	}
}

// limitsAndUpdate checks box's limits (--memory 64m --pids-limit 50) in its
// cgroup cg, and that devbox update changes them.
func limitsAndUpdate(t *testing.T, box, cg string) {
	t.Helper()
	if got := readFile(t, cg, "memory.max"); got != "67108864" {
		t.Errorf("memory.max %s", got)
	}
	if got := readFile(t, cg, "pids.max"); got != "50" {
		t.Errorf("pids.max %s", got)
	}
	if r := devbox(nil, "update", box, "--memory", "128m"); r.code != 0 || readFile(t, cg, "memory.max") != "134217728" {
		t.Errorf("update: exit %d %s; memory.max %s", r.code, r.stderr, readFile(t, cg, "memory.max"))
	}
}

// TestSystemdScopeOOM: enforcement inside a systemd scope.
func TestSystemdScopeOOM(t *testing.T) {
	requireUserBus(t)
	r := devbox(nil, "run", "--memory", "64m", imageRef, "--", "/workload", "alloc", "256")
	if r.code != 137 || !strings.Contains(r.stderr, "the box hit its memory limit") {
		t.Fatalf("exit %d, want 137\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = devbox(nil, "run", imageRef, "--", "/workload", "cgroup")
	if r.code != 0 || !scopeBox.MatchString(strings.TrimSpace(r.stdout)) || r.stderr != "" {
		t.Errorf("without limits: exit %d, cgroup %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestSystemdControllerNotDelegated: Debian's user@.service delegates
// "pids memory cpu" only, so --io-weight fails before anything starts and
// names the drop-in that fixes it.
func TestSystemdControllerNotDelegated(t *testing.T) {
	requireUserBus(t)
	have := readFile(t, userManager, "cgroup.controllers")
	r := devbox(nil, "run", "--io-weight", "200", imageRef, "--", "echo", "ran")
	if strings.Contains(" "+have+" ", " io ") {
		if r.code != 0 {
			t.Errorf("io is delegated (%s) but --io-weight failed: %s", have, r.stderr)
		}
		return
	}
	msg := strings.TrimSpace(r.stderr)
	if r.code != 125 || r.stdout != "" || strings.Count(msg, "\n") != 0 ||
		!strings.Contains(msg, "cannot apply --io-weight: the io controller is not delegated to your systemd user session") ||
		!strings.Contains(msg, cgroup.DelegateConf) || !strings.Contains(msg, "systemctl daemon-reload") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, msg)
	}
	t.Logf("user@1000.service offers %q; devbox said: %s", have, msg)
}

// boxUnderManager matches a box cgroup anywhere below the user manager.
var boxUnderManager = regexp.MustCompile(`^` + regexp.QuoteMeta(userManager) + `/.+/devbox-[0-9a-f]{32}$`)

// TestSystemdWarmStartJoinsCgroup: from a terminal under the user's
// manager (a transient scope of its own, as a desktop terminal gives each
// tab), the first run leaves a warm holder (internal/warm); from the
// second on the CLI gets a spare from it, moved into the box's cgroup
// before its start byte, and a run with the same command line as the one
// before is replayed through the holder with its box in a cgroup made as
// devbox run makes it: each command runs in its box's cgroup, which is
// gone when the run ends. From the suite's own cgroup (like an ssh
// login's, which the user cannot move processes out of) no holder is used.
func TestSystemdWarmStartJoinsCgroup(t *testing.T) {
	requireUserBus(t)
	dir := t.TempDir()
	// Runs 1-3: another command line each (2 and 3 through the holder);
	// 4 and 5: the same one (5 replays 4).
	script := `for i in 1 2 3 4 5; do a=$i; [ $i -lt 4 ] || a=same; DEVBOX_TRACE=1 "$0" run --net none --hostname early "$1" -- /workload cgroup $a >"$2/out$i" 2>"$2/err$i"; echo $? >"$2/rc$i"; done; cat /proc/self/cgroup >"$2/terminal"`
	c := exec.Command("systemd-run", "--user", "--scope", "--quiet", "sh", "-c", script, devboxBin, imageRef, dir)
	c.Env = devboxCmd().Env
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("systemd-run --user --scope: %v\n%s", err, out)
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b))
	}
	terminal := strings.TrimPrefix(read("terminal"), "0::")
	if !strings.HasPrefix(terminal, userManager+"/") {
		t.Fatalf("the terminal scope is %q, not under %s", terminal, userManager)
	}
	for i := 1; i <= 5; i++ {
		n := strconv.Itoa(i)
		out, stderr := strings.TrimSpace(read("out"+n)), read("err"+n)
		if read("rc"+n) != "0" || !boxUnderManager.MatchString(out) {
			t.Fatalf("run %d: exit %s, cgroup %q\n%s", i, read("rc"+n), out, stderr)
		}
		held := strings.Contains(stderr, "warm: via holder")
		replayed := strings.Contains(stderr, "warm: replaying")
		// (Run 1 may find a holder another test left.)
		if i > 1 && !held {
			t.Errorf("run %d: not through the holder\n%s", i, stderr)
		}
		if replayed != (i == 5) {
			t.Errorf("run %d: replayed: %v, want %v\n%s", i, replayed, i == 5, stderr)
		}
		if !gone(out) {
			t.Errorf("run %d: its cgroup %s is left", i, out)
		}
		t.Logf("run %d: box in %s; via holder: %v; replayed: %v", i, out, held, replayed)
	}
	// From the suite's cgroup a move is refused: no holder.
	for i := 0; i < 2; i++ {
		c := devboxCmd("run", "--net", "none", "--hostname", "ssh", imageRef, "--", "/workload", "cgroup")
		c.Env = append(c.Env, "DEVBOX_TRACE=1")
		out, err := c.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "run: done") || strings.Contains(string(out), "warm: ") {
			t.Errorf("run %d from the suite's cgroup: %v\n%s", i, err, out)
		}
	}
}

// The TestSystemdShared tests run devbox the way a desktop terminal or
// `systemd-run --user` does: from a cgroup of the user manager
// (systemd-run --user --scope), where devbox may clone a box straight into
// the user's one delegated devbox.scope. There a box is a mkdir and file
// writes below devbox.scope, not a D-Bus round trip and a scope of its own.

const sharedScope = userManager + "/app.slice/" + cgroup.SharedScope

var sharedBox = regexp.MustCompile(`^` + regexp.QuoteMeta(sharedScope) + `/devbox-[0-9a-f]{32}$`)

// userDevboxCmd is devboxCmd started from a new scope of the user manager.
func userDevboxCmd(args ...string) *exec.Cmd {
	c := devboxCmd(args...)
	c.Path = "/usr/bin/systemd-run"
	c.Args = append([]string{c.Path, "--user", "--scope", "--quiet", "--", devboxBin}, args...)
	return c
}

// keeperPid returns the pid of devbox.scope's keeper, the only process of
// its leaf.
func keeperPid(t *testing.T) int {
	t.Helper()
	procs := strings.Fields(readFile(t, sharedScope+"/"+cgroup.KeeperLeaf, "cgroup.procs"))
	if len(procs) != 1 {
		t.Fatalf("devbox.scope's keeper leaf holds %v, want one process", procs)
	}
	pid, _ := strconv.Atoi(procs[0])
	return pid
}

// stopShared stops devbox.scope (and its keeper), if it runs.
func stopShared(t *testing.T) {
	t.Helper()
	stop := exec.Command("systemctl", "--user", "stop", cgroup.SharedScope)
	stop.Env = devboxCmd().Env
	if out, err := stop.CombinedOutput(); err != nil && !strings.Contains(string(out), "not loaded") {
		t.Fatalf("systemctl --user stop devbox.scope: %v: %s", err, out)
	}
	if !waitGone(sharedScope, 10*time.Second) {
		t.Fatal("devbox.scope stayed after systemctl stop")
	}
}

// devboxUnits lists the user manager's units named devbox*.
func devboxUnits(t *testing.T) []string {
	t.Helper()
	c := exec.Command("systemctl", "--user", "list-units", "--all", "--plain", "--no-legend", "devbox*")
	c.Env = devboxCmd().Env
	out, err := c.Output()
	if err != nil {
		t.Fatalf("systemctl --user list-units: %v", err)
	}
	var units []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			units = append(units, f[0])
		}
	}
	return units
}

// TestSystemdSharedScope: two boxes at once share devbox.scope (the only
// devbox unit), each in devbox.scope/devbox-<id>, the CLIs stay where they
// were; limits, stats and update work; each box's cgroup goes when it
// ends, and the keeper (small) stays for the next box, which needs no
// D-Bus at all.
func TestSystemdSharedScope(t *testing.T) {
	requireUserBus(t)
	stopShared(t) // the two boxes below race to create it
	c1 := userDevboxCmd("run", "--name", "sh1", "--memory", "64m", "--pids-limit", "50", imageRef, "--", "sleep", "600")
	c2 := userDevboxCmd("run", "--name", "sh2", imageRef, "--", "sleep", "600")
	for i, c := range []*exec.Cmd{c1, c2} {
		var errb bytes.Buffer
		c.Env = append(c.Env, "DEVBOX_TRACE=1")
		c.Stderr = &errb
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			c.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				c.Process.Kill()
				<-done
				t.Errorf("devbox run sh%d did not end within 20 s of SIGTERM", i+1)
			}
			if t.Failed() {
				t.Logf("devbox run sh%d's stderr:\n%s", i+1, errb.String())
			}
		}()
	}
	r1, r2 := statsOf(t, "sh1"), statsOf(t, "sh2")
	for _, r := range []statsRow{r1, r2} {
		if !sharedBox.MatchString(r.Cgroup) {
			t.Fatalf("box %s in %s, want %s/devbox-<id>", r.Name, r.Cgroup, sharedScope)
		}
	}
	if r1.Cgroup == r2.Cgroup {
		t.Fatalf("both boxes in %s", r1.Cgroup)
	}
	if units := devboxUnits(t); len(units) != 1 || units[0] != cgroup.SharedScope {
		t.Errorf("devbox units of the user manager: %v, want only %s", units, cgroup.SharedScope)
	}
	for _, c := range []*exec.Cmd{c1, c2} {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(c.Process.Pid) + "/cgroup")
		if strings.Contains(string(b), cgroup.SharedScope) {
			t.Errorf("the devbox CLI (pid %d) was moved into %s", c.Process.Pid, strings.TrimSpace(string(b)))
		}
	}
	keeper := keeperPid(t)
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(keeper) + "/status")
	kB := map[string]int{}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(v, " kB") {
			kB[k], _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	rss := kB["VmRSS"]
	t.Logf("keeper pid %d: VmRSS %d kB (RssAnon %d, RssFile %d), %d threads; cgroup.procs of devbox.scope: %q",
		keeper, rss, kB["RssAnon"], kB["RssFile"], len(strings.Fields(readFile(t, sharedScope+"/"+cgroup.KeeperLeaf, "cgroup.threads"))), readFile(t, sharedScope, "cgroup.procs"))
	if rss == 0 || rss > 10<<10 {
		t.Errorf("keeper VmRSS %d kB, want at most 10 MiB", rss)
	}
	limitsAndUpdate(t, "sh1", r1.Cgroup)
	if got := readFile(t, r2.Cgroup, "memory.max"); got != "max" {
		t.Errorf("box without limits: memory.max %s", got)
	}
	if r := devbox(nil, "stats", "--no-stream"); r.code != 0 || !strings.Contains(r.stdout, "sh1") || !strings.Contains(r.stdout, "sh2") {
		t.Errorf("stats --no-stream: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, c := range []*exec.Cmd{c1, c2} {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}
	for _, r := range []statsRow{r1, r2} {
		if !waitGone(r.Cgroup, 10*time.Second) {
			t.Errorf("cgroup %s is left after the box stopped", r.Cgroup)
		}
	}
	if gone(sharedScope) || keeperPid(t) != keeper {
		t.Fatalf("devbox.scope or its keeper did not survive the boxes")
	}
	// The next box: no D-Bus at all (trace marks), same scope, same keeper.
	c := userDevboxCmd("run", imageRef, "--", "/workload", "cgroup")
	c.Env = append(c.Env, "DEVBOX_TRACE=1")
	r := runCmd(c, nil)
	if r.code != 0 || !sharedBox.MatchString(strings.TrimSpace(r.stdout)) {
		t.Fatalf("exit %d, cgroup %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "devbox-trace") || strings.Contains(r.stderr, "dialing the user bus") {
		t.Errorf("the run dialed the user bus, or traced nothing:\n%s", r.stderr)
	}
	if keeperPid(t) != keeper {
		t.Errorf("another keeper")
	}
}

// TestSystemdSharedEnforced: OOM kill (exit 137) and --pids-limit in a
// box below devbox.scope.
func TestSystemdSharedEnforced(t *testing.T) {
	requireUserBus(t)
	r := runCmd(userDevboxCmd("run", "--memory", "64m", imageRef, "--", "/workload", "alloc", "256"), nil)
	if r.code != 137 || !strings.Contains(r.stderr, "the box hit its memory limit") {
		t.Fatalf("exit %d, want 137\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	row := pidsLimited(t, userDevboxCmd("run", "--name", "shpids", "--pids-limit", "20", imageRef, "--", "/workload", "fork", "/bin/busybox"), "shpids")
	if !sharedBox.MatchString(row.Cgroup) {
		t.Errorf("box in %s, want %s/devbox-<id>", row.Cgroup, sharedScope)
	}
}

// TestSystemdSharedPersistentBox: a persistent box started from the user
// manager lives below devbox.scope too, and its cgroup goes when it stops.
func TestSystemdSharedPersistentBox(t *testing.T) {
	requireUserBus(t)
	if r := devbox(nil, "create", "shbox", "--image", imageRef); r.code != 0 {
		t.Fatalf("create: exit %d: %s", r.code, r.stderr)
	}
	defer devbox(nil, "rm", "-f", "shbox")
	r := runCmd(userDevboxCmd("shell", "shbox", "--", "/workload", "cgroup"), nil)
	cg := strings.TrimSpace(r.stdout)
	if r.code != 0 || !sharedBox.MatchString(cg) {
		t.Fatalf("shell: exit %d, cgroup %q, stderr %s", r.code, cg, r.stderr)
	}
	if r := devbox(nil, "stop", "shbox"); r.code != 0 {
		t.Fatalf("stop: exit %d: %s", r.code, r.stderr)
	}
	if !waitGone(cg, 10*time.Second) {
		t.Errorf("cgroup %s is left after the box stopped", cg)
	}
}

// TestSystemdSharedKeeperRestart: a keeper killed while a box keeps
// devbox.scope alive is replaced by the next box, without D-Bus.
func TestSystemdSharedKeeperRestart(t *testing.T) {
	requireUserBus(t)
	c := userDevboxCmd("run", "--name", "kr", imageRef, "--", "sleep", "600")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}()
	if row := statsOf(t, "kr"); !sharedBox.MatchString(row.Cgroup) {
		t.Fatalf("box in %s", row.Cgroup)
	}
	old := keeperPid(t)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && readFile(t, sharedScope+"/"+cgroup.KeeperLeaf, "cgroup.procs") != ""; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	r := runCmd(userDevboxCmd("run", imageRef, "--", "/workload", "cgroup"), nil)
	if r.code != 0 || !sharedBox.MatchString(strings.TrimSpace(r.stdout)) {
		t.Fatalf("exit %d, cgroup %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if k := keeperPid(t); k == old {
		t.Errorf("keeper %d was not replaced", k)
	}
	if units := devboxUnits(t); len(units) != 1 || units[0] != cgroup.SharedScope {
		t.Errorf("devbox units of the user manager: %v", units)
	}
}

// TestSystemdSharedFigure times `devbox run --net none IMG true` from a
// scope of the user manager with a scope per box (devbox.scope stopped and
// not creatable: no XDG_RUNTIME_DIR) and with devbox.scope, first with the
// fast-start paths off (DEVBOX_WARM=0: the cgroup's cost alone), then
// as shipped; and, for the record, from outside the user manager (an
// ssh-like session: a scope per box). Alternating passes, one untimed run
// before each loop.
func TestSystemdSharedFigure(t *testing.T) {
	requireUserBus(t)
	const passes, n = 2, 10
	loop := fmt.Sprintf(`d=%s; $d run --net none %s true || exit 1; s=$(date +%%s%%N); i=0; while [ $i -lt %d ]; do $d run --net none %s true || exit 1; i=$((i+1)); done; e=$(date +%%s%%N); echo $(( (e - s) / 1000 ))`,
		devboxBin, imageRef, n, imageRef)
	// timeLoop runs c (the loop) and returns the time of its n timed runs
	// in µs.
	timeLoop := func(name string, c *exec.Cmd) int {
		t.Helper()
		r := runCmd(c, nil)
		us, err := strconv.Atoi(strings.TrimSpace(r.stdout))
		if r.code != 0 || err != nil {
			t.Fatalf("%s: exit %d: %s%s", name, r.code, r.stdout, r.stderr)
		}
		return us
	}
	// loopCmd is the loop from a new scope of the user manager (user) or
	// from the suite's cgroup, with the environment changed by env
	// ("K=V" sets, "K=" drops K).
	loopCmd := func(user bool, env ...string) *exec.Cmd {
		c := exec.Command("/bin/sh", "-c", loop)
		if user {
			c = exec.Command("/usr/bin/systemd-run", "--user", "--scope", "--quiet", "--", "/bin/sh", "-c", loop)
		}
		for _, kv := range devboxCmd().Env {
			k, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(env, k+"=") {
				c.Env = append(c.Env, kv)
			}
		}
		for _, kv := range env {
			if !strings.HasSuffix(kv, "=") {
				c.Env = append(c.Env, kv)
			}
		}
		return c
	}
	type way struct {
		name   string
		user   bool
		shared bool
		env    []string
	}
	ways := []way{
		{"per-box scope, CLI under user@1000.service, DEVBOX_WARM=0", true, false, []string{"XDG_RUNTIME_DIR=", "DEVBOX_WARM=0"}},
		{"devbox.scope, CLI under user@1000.service, DEVBOX_WARM=0", true, true, []string{"DEVBOX_WARM=0"}},
		{"per-box scope, CLI under user@1000.service", true, false, []string{"XDG_RUNTIME_DIR="}},
		{"devbox.scope, CLI under user@1000.service", true, true, nil},
		{"per-box scope, CLI outside the user manager (ssh-like)", false, false, nil},
	}
	total := make([]int, len(ways))
	for pass := 0; pass < passes; pass++ {
		for i, w := range ways {
			if w.user && !w.shared {
				stopShared(t)
			}
			total[i] += timeLoop(w.name, loopCmd(w.user, w.env...))
			if w.user && gone(sharedScope) == w.shared {
				t.Errorf("%s: devbox.scope there: %v", w.name, !gone(sharedScope))
			}
		}
	}
	for i, w := range ways {
		t.Logf("FIGURE %s: %.1f ms per devbox run --net none IMG true (mean of %d, %d alternating passes)",
			w.name, float64(total[i])/float64(passes*n)/1000, passes*n, passes)
	}
}
