//go:build integration

package integration

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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
	sbhome := filepath.Join(t.TempDir(), "sbhome")
	os.Mkdir(sbhome, 0o755)
	e.ok("create", "sb", "--image", img, "--home", sbhome, "--net", "none", "--grace", "60")

	var r [8]byte
	rand.Read(r[:])
	desc := "devbox-canary-key-" + hex.EncodeToString(r[:])
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, _, errno := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); errno != 0 {
		t.Fatalf("joining a session keyring: %v", errno)
	}
	for _, ring := range []int{unix.KEY_SPEC_SESSION_KEYRING, unix.KEY_SPEC_USER_KEYRING} {
		id, err := unix.AddKey("user", desc, []byte("secret"), ring)
		if err != nil {
			t.Fatalf("adding the canary key: %v", err)
		}
		defer unix.KeyctlInt(unix.KEYCTL_UNLINK, id, ring, 0, 0)
	}
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
	res := e.ok("exec", "--root", "sb", "--", "/probe", "masks")
	n := 0
	for k, v := range lines(res.stdout) {
		if strings.HasPrefix(k, "umount ") || strings.HasPrefix(k, "remount-rw ") || strings.HasPrefix(k, "mount ") || strings.HasPrefix(k, "unshare") || strings.HasPrefix(k, "open /proc/sysrq") {
			n++
			if v == "ok" {
				t.Errorf("%s from a root session succeeded", k)
			}
		}
	}
	if n < 8 || !strings.Contains(res.stdout, "read /proc/kcore: 0 bytes") {
		t.Errorf("probe masks:\n%s", res.stdout)
	}
}
