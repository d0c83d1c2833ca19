//go:build integration

package integration

// A red-team pass of the warm path (internal/warm, internal/holder), the
// replay records and the front's session tickets: each test is an attack
// named after it (docs/security.md, "Warm holders and replay").

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/internal/warm"
)

// warmEnv is the environment of runs that use a holder of their own: a
// private runtime directory (so that no other test's holder serves them),
// the trace (to see which path a run took).
func warmEnv(t *testing.T) (rt string, env []string) {
	t.Helper()
	rt = t.TempDir()
	if err := os.Chmod(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	return rt, []string{traceEnv, "XDG_RUNTIME_DIR=" + rt, warm.IdleEnv + "=30"}
}

// viaHolder runs devbox args with env until a run's init was a holder's
// spare (at most five runs; the first may start the holder) and returns
// that run. A run that took no spare fails the test unless it is allowed
// to (cold).
func viaHolder(t *testing.T, e *env, env []string, args ...string) result {
	t.Helper()
	var r result
	for i := 0; i < 5; i++ {
		r = e.runEnv(env, args...)
		if strings.Contains(r.stderr, markHolder) {
			return r
		}
		time.Sleep(100 * time.Millisecond) // the holder's spares start
	}
	t.Fatalf("five runs, no spare took one (the test is void): devbox %s\nstdout: %s\nstderr: %s",
		strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// TestEscapeWarmKeyringShared: boxes a holder's spares start share the
// holder's user namespace, and the kernel keeps one user keyring (@u) and
// one user-session keyring (@us) per uid and user namespace, which outlive
// the processes that use them. A box whose filter allows keyctl (seccomp=
// unconfined) plants a key in both; a later box of the same holder must
// not find it, as a box with a user namespace of its own (a cold start)
// does not.
func TestEscapeWarmKeyringShared(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	_, env := warmEnv(t)
	desc := "devbox-red9-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	flags := []string{"run", "--net", "none", "--security-opt", "seccomp=unconfined", img, "--"}
	// Cold: the key stays in the planting box's namespace (a control of
	// the probe and of the search).
	cold := append(env, coldEnv)
	if r := e.runEnv(cold, append(flags, "/probe", "plant-key", desc+"-cold")...); !strings.Contains(r.stdout, "plant user: ok") {
		t.Fatalf("the probe cannot plant a key (the test is void):\n%s%s", r.stdout, r.stderr)
	}
	if r := e.runEnv(cold, append(flags, "/probe", "keys", desc+"-cold")...); strings.Contains(r.stdout, "FOUND") {
		t.Fatalf("cold starts share a keyring:\n%s", r.stdout)
	}
	// Warm: a holder serves this start (the default filter), then boxes
	// that may use keyrings plant and search, the holder there.
	viaHolder(t, e, env, "run", "--net", "none", img, "--", "/probe", "status")
	for i := 0; i < 3; i++ {
		r := e.runEnv(env, append(flags, "/probe", "plant-key", desc, "plant"+strconv.Itoa(i))...)
		if !strings.Contains(r.stdout, "plant user: ok") || !strings.Contains(r.stdout, "plant user-session: ok") {
			t.Fatalf("the probe cannot plant a key (the test is void):\n%s%s", r.stdout, r.stderr)
		}
	}
	for i := 0; i < 3; i++ {
		r := e.runEnv(env, append(flags, "/probe", "keys", desc, "search"+strconv.Itoa(i))...)
		if strings.Contains(r.stdout, "FOUND") {
			t.Errorf("a box found the key an earlier box planted (warm: %v):\n%s", strings.Contains(r.stderr, markHolder), r.stdout)
		}
	}
}
