//go:build integration

package integration

import (
	"strings"
	"testing"
)

// TestEscapeSessionDescriptors: what a command finds open, however it
// started — a persistent box's first session (the CLI starts the box),
// later ones (devbox's front sends them), as root, on a terminal, and
// devbox run's command cold, from a warm spare and on the default network
// (whose init made the tap and handed it to the helper) — is exactly its
// stdin, stdout and stderr: no descriptor of the agent, the init, the
// front, the CLI or the network (a red-team pass; it held).
func TestEscapeSessionDescriptors(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	e.stopBoxesAtCleanup()
	e.ok("create", "sd", "--image", img, "--home", sandboxHome(t), "--net", "none", "--grace", "60")
	check := func(name, out string) {
		t.Helper()
		n := 0
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(strings.TrimRight(l, "\r"))
			if len(f) < 2 || f[0] != "fd:" {
				continue
			}
			n++
			if f[1] != "0" && f[1] != "1" && f[1] != "2" {
				t.Errorf("%s: the command holds %s", name, strings.TrimSpace(l))
			}
		}
		if n == 0 {
			t.Errorf("%s: the probe listed no descriptors (the test is void):\n%s", name, out)
		}
	}
	dump := []string{"--", "/probe", "dump"}
	check("exec, the box's start", e.ok(append([]string{"exec", "sd"}, dump...)...).stdout)
	check("exec through the front", e.ok(append([]string{"exec", "sd"}, dump...)...).stdout)
	check("exec --root", e.ok(append([]string{"exec", "--root", "sd"}, dump...)...).stdout)
	out, code := e.onTerminal(append([]string{"shell", "sd"}, dump...)...)
	if code != 0 {
		t.Errorf("shell on a terminal: exit %d\n%s", code, out)
	}
	check("shell on a terminal", out)
	check("run --net none", e.ok(append([]string{"run", "--net", "none", img}, dump...)...).stdout)
	check("run, default network", e.ok(append([]string{"run", img}, dump...)...).stdout)
	for i := 0; i < 2; i++ {
		r := e.runEnv([]string{"DEVBOX_WARM=1"}, append([]string{"run", "--net", "none", img}, dump...)...)
		if r.code != 0 {
			t.Fatalf("warm run: exit %d\n%s", r.code, r.stderr)
		}
		check("run from a spare", r.stdout)
	}
}
