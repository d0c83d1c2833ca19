//go:build integration

package integration

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestEscapeSessionRearmed: a persistent box's agent forks each session
// from a thread it hardened for it (bounding set, no_new_privs, seccomp,
// a new session keyring, Landlock where asked), and since session 9 it
// hardens the next such thread only after a session's exit reply
// (rearmBoxHardening). Whatever the sessions before did — exit with a
// code, die of SIGKILL, leave a process behind, overlap with another
// session — every later session must be exactly as confined as the
// first: the probe's dump (status: CapInh/CapPrm/CapEff/CapBnd/CapAmb,
// NoNewPrivs, Seccomp, Seccomp_filters, Umask, SigBlk, SigIgn as sh sees
// them; limits, cwd, root, descriptors, keyrings, mounts, masks, and the
// errno of calls the box must refuse) of sessions 2..N equals session
// 1's, as the owner and as --root, with the default bounding set and with
// another (whose filter is compiled at run time).
func TestEscapeSessionRearmed(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	e.stopBoxesAtCleanup()
	// sr: the default filter (precompiled); sc: another bounding set,
	// whose filter the init compiles at run time for each thread.
	e.ok("create", "sr", "--image", img, "--home", sandboxHome(t), "--net", "none", "--grace", "120")
	e.ok("create", "sc", "--image", img, "--home", sandboxHome(t), "--net", "none", "--grace", "120", "--cap-add", "SYS_PTRACE", "--cap-drop", "CHOWN")
	// What the sessions between two dumps do.
	between := [][]string{
		{"sh", "-c", "exit 3"},
		{"sh", "-c", "kill -9 $$"},
		{"sh", "-c", "sleep 30 >/dev/null 2>&1 </dev/null & exit 0"},
		{"sh", "-c", "umask 0 && ulimit -n 64 && trap '' INT && exec true"},
		nil, // another dump while a long session runs (below)
		{"true"},
	}
	for _, run := range []struct {
		box string
		who []string
	}{{"sr", nil}, {"sr", []string{"--root"}}, {"sc", []string{"--root"}}} {
		who := append(append([]string{}, run.who...), run.box)
		dump := func() string {
			t.Helper()
			args := append(append([]string{"exec"}, who...), "--", "sh", "-c", shellView, "sh")
			return e.ok(args...).stdout
		}
		first := dump()
		if !strings.Contains(first, "status: NoNewPrivs 1") || !strings.Contains(first, "status: Seccomp 2") {
			t.Fatalf("%v: the first session is not confined (the test is void):\n%s", who, first)
		}
		for i, b := range between {
			var long *exec.Cmd
			if b == nil {
				long = e.cmd(append(append([]string{"exec"}, who...), "--", "sleep", "5")...)
				if err := long.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(500 * time.Millisecond)
			} else {
				e.run(append(append(append([]string{"exec"}, who...), "--"), b...)...)
			}
			got := dump()
			if long != nil {
				long.Wait()
			}
			if got != first {
				t.Errorf("%v: session %d (after %q) differs from the first:\n%s", who, i+2, b, lineDiff("session 1", "later", first, got))
			}
		}
	}
}
