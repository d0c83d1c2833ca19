//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/cgroup"
)

// TestLimitsOnThisHost: asking for a limit this host cannot apply fails
// before anything starts, with the reason and the fix, exit 125; without
// limits boxes run with no message. (Enforcement is proven on pure cgroup
// v2 by the VM rig, test/vm.)
func TestLimitsOnThisHost(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "busybox")
	h := cgroup.DetectHost()
	t.Logf("cgroup mode: %v", h.Mode)

	r := e.run("run", "busybox", "--", "echo", "hello")
	if r.code != 0 || r.stdout != "hello\n" || r.stderr != "" {
		t.Fatalf("run without limits: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	for _, args := range [][]string{
		{"--memory", "64m"},
		{"--cpus", "0.5", "--pids-limit", "20"},
		{"--memory", "64m", "--memory-swap", "128m", "--cpu-weight", "50", "--io-weight", "50"},
	} {
		r := e.run(append(append([]string{"run"}, args...), "busybox", "--", "echo", "ran")...)
		switch h.Mode {
		case cgroup.Hybrid, cgroup.Legacy, cgroup.Unavailable:
			if r.code != 125 || r.stdout != "" {
				t.Errorf("%v: exit %d, stdout %q; want 125 and nothing run", args, r.code, r.stdout)
			}
			msg := strings.TrimSpace(r.stderr)
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "devbox: cannot apply "+args[0]) || !strings.Contains(msg, "(hint: ") {
				t.Errorf("%v: message %q", args, msg)
			}
			if h.Mode == cgroup.Hybrid && (!strings.Contains(msg, "hybrid") || !strings.Contains(msg, "no usable v2 controller") || !strings.Contains(msg, "systemd.unified_cgroup_hierarchy=1")) {
				t.Errorf("%v: the hybrid host is not explained: %q", args, msg)
			}
		default:
			// Pure cgroup v2: applied where delegated, else explained.
			if !(r.code == 0 && r.stdout == "ran\n") && !(r.code == 125 && strings.Contains(r.stderr, "devbox: cannot apply ")) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
			}
		}
	}

	// Malformed values: one line with a hint, exit 125.
	for _, bad := range [][]string{{"--memory", "12q"}, {"--cpus", "lots"}, {"--pids-limit", "0"}, {"--memory-swap", "1g"}, {"--cpu-weight", "20000"}} {
		r := e.run(append(append([]string{"run"}, bad...), "busybox", "--", "true")...)
		msg := strings.TrimSpace(r.stderr)
		if r.code != 125 || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "(hint: ") {
			t.Errorf("%v: exit %d, %q", bad, r.code, msg)
		}
	}

	// stats and update with nothing running: where boxes get no cgroup,
	// stats says why once (issue 19); a missing name is no such box.
	_, noCgroups := cgroup.Decide(h, cgroup.Limits{PidsLimit: 1 << 20})
	r = e.run("stats", "--no-stream", "--json")
	if noCgroups != nil {
		if r.code != 125 || !strings.Contains(r.stderr, "have no cgroup") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("stats without cgroups: exit %d, %q %q", r.code, r.stdout, r.stderr)
		}
	} else if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("stats: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run("update", "nosuchbox", "--memory", "1g"); r.code != 125 || !strings.Contains(r.stderr, "no such box") {
		t.Errorf("update: exit %d, %q", r.code, r.stderr)
	}
}
