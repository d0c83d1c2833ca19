//go:build integration

package integration

import (
	"strings"
	"testing"
)

// TestExecJoinsTheBox: `devbox exec` starts a stopped box, runs in the same
// box as a shell session (its /tmp, its PID namespace), passes the exit code
// and the output through, and fails 125 with a hint for a box that does not
// exist. Busybox only: the VM rig's systemd guest runs it too.
func TestExecJoinsTheBox(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "ex", "--image", "busybox", "--grace", "30")
	if bs := e.boxes(); len(bs) != 1 || bs[0].State.Running {
		t.Fatalf("after create: %+v", bs)
	}
	if r := e.ok("exec", "ex", "--", "sh", "-c", "echo joined > /tmp/marker; echo hello"); r.stdout != "hello\n" {
		t.Errorf("exec stdout %q", r.stdout)
	}
	if bs := e.boxes(); len(bs) != 1 || !bs[0].State.Running {
		t.Errorf("exec did not start the box: %+v", bs)
	}
	if r := e.ok("shell", "ex", "--", "cat", "/tmp/marker"); r.stdout != "joined\n" {
		t.Errorf("a shell session does not see what exec wrote: %q", r.stdout)
	}
	// One PID namespace: a process started by one session is seen by the next.
	e.ok("exec", "ex", "--", "sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 & echo $! > /tmp/sleeper")
	if r := e.ok("exec", "ex", "--", "sh", "-c", "kill -0 $(cat /tmp/sleeper) && echo alive"); r.stdout != "alive\n" {
		t.Errorf("the first session's process is not visible: %q %q", r.stdout, r.stderr)
	}
	if r := e.run("exec", "ex", "--", "sh", "-c", "echo out; echo err >&2; exit 7"); r.code != 7 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err") {
		t.Errorf("exit 7: got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r := e.run("exec", "nosuchbox", "--", "true")
	if r.code != 125 || r.stdout != "" || !strings.Contains(r.stderr, "hint:") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("missing box: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
