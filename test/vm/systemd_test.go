//go:build vm

package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	if got := readFile(t, row.Cgroup, "memory.max"); got != "67108864" {
		t.Errorf("memory.max %s", got)
	}
	if got := readFile(t, row.Cgroup, "pids.max"); got != "50" {
		t.Errorf("pids.max %s", got)
	}
	if r := devbox(nil, "update", "sd", "--memory", "128m"); r.code != 0 || readFile(t, row.Cgroup, "memory.max") != "134217728" {
		t.Errorf("update: exit %d %s; memory.max %s", r.code, r.stderr, readFile(t, row.Cgroup, "memory.max"))
	}
	t.Logf("box in %s", row.Cgroup)
	c.Process.Signal(syscall.SIGTERM)
	c.Wait()
	if !waitGone(scope, 10*time.Second) {
		t.Errorf("scope %s is left after the box stopped", scope)
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

// TestSystemdEarlyStartJoinsCgroup: from a terminal under the user's
// manager (a transient scope of its own, as a desktop terminal gives each
// tab), the second run with the same flags adopts an init started early,
// moved into the box's cgroup before its start byte: the command runs in
// the box's cgroup, nothing is left in the terminal's. From the suite's
// own cgroup (like an ssh login's, which the user cannot move processes
// out of) no early start is tried.
func TestSystemdEarlyStartJoinsCgroup(t *testing.T) {
	requireUserBus(t)
	dir := t.TempDir()
	script := `for i in 1 2 3; do DEVBOX_TRACE=1 "$0" run --net none --hostname early "$1" -- /workload cgroup $i >"$2/out$i" 2>"$2/err$i"; echo $? >"$2/rc$i"; done; cat /proc/self/cgroup >"$2/terminal"`
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
	for i := 1; i <= 3; i++ {
		n := strconv.Itoa(i)
		out, stderr := strings.TrimSpace(read("out"+n)), read("err"+n)
		if read("rc"+n) != "0" || !boxUnderManager.MatchString(out) {
			t.Fatalf("run %d: exit %s, cgroup %q\n%s", i, read("rc"+n), out, stderr)
		}
		adopted := strings.Contains(stderr, "rootless: early start adopted")
		if i == 1 && adopted || i > 1 && !adopted {
			t.Errorf("run %d: early start adopted: %v, want %v\n%s", i, adopted, i > 1, stderr)
		}
		t.Logf("run %d: box in %s; via holder: %v", i, out, strings.Contains(stderr, "prestart: via holder"))
	}
	// From the suite's cgroup a move is refused: no recipe, no early start.
	for i := 0; i < 2; i++ {
		c := devboxCmd("run", "--net", "none", "--hostname", "ssh", imageRef, "--", "/workload", "cgroup")
		c.Env = append(c.Env, "DEVBOX_TRACE=1")
		out, err := c.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "run: done") || strings.Contains(string(out), "early start") {
			t.Errorf("run %d from the suite's cgroup: %v\n%s", i, err, out)
		}
	}
}
