//go:build integration

package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestEscapeSessionLikeRun: the escape suite's attacks on `devbox run`,
// made from a session of a persistent sandbox (a box with a home of its
// own, entered with exec, as its user and as its root), which the agent
// forks rather than the run's init: descriptors and cwds of every visible
// process walked up to canaries above the store and in the user's home,
// tracing the init, the caller's session and user keyrings (the box
// started from a devbox holding a canary key in both), the masks over
// /proc and /sys. Each must fail as it does for a run.
func TestEscapeSessionLikeRun(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	e.stopBoxesAtCleanup()
	up := plantCanary(t, filepath.Dir(e.data))
	home := plantCanary(t, e.home)
	e.ok("create", "sb", "--image", img, "--home", sandboxHome(t), "--net", "none", "--grace", "60")

	desc := canaryKeys(t)
	// The first exec starts the box: its init has the caller's keyrings.
	for _, who := range [][]string{nil, {"--root"}} {
		exec := append(append([]string{"exec"}, who...), "sb", "--", "/probe")
		res := e.ok(append(exec, "keys", desc)...)
		if strings.Contains(res.stdout, "FOUND") || !strings.Contains(res.stdout, "session") {
			t.Errorf("probe keys %v:\n%s", who, res.stdout)
		}
		for _, c := range []fileCanary{up, home} {
			res := e.ok(append(exec, "fds", c.name)...)
			if strings.Contains(res.stdout, "ESCAPED") || !strings.Contains(res.stdout, "walked: ") {
				t.Errorf("probe fds %v:\n%s", who, res.stdout)
			}
			c.check(t)
		}
		m := lines(e.ok(append(exec, "ptrace")...).stdout)
		for _, k := range []string{"attach", "seize", "open /proc/1/mem", "open /proc/1/environ"} {
			if v, ok := m[k]; !ok || v == "ok" {
				t.Errorf("%s of the init from a session %v: %q (want a refusal)", k, who, v)
			}
		}
	}
	checkMasks(t, e.ok("exec", "--root", "sb", "--", "/probe", "masks").stdout)
}
