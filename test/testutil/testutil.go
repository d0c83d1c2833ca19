// Package testutil holds what devbox's tests share: the skip rule (a test
// that cannot run here says SKIP with the reason, except in CI, where
// DEVBOX_TEST_NOSKIP=1 turns every skip into a failure).
package testutil

import (
	"os"
	"testing"
)

// Skip skips t with reason, or fails it when DEVBOX_TEST_NOSKIP is set.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("DEVBOX_TEST_NOSKIP") != "" {
		t.Fatalf("cannot run here and skipping is not allowed (DEVBOX_TEST_NOSKIP): %s", reason)
	}
	t.Skip("SKIP: " + reason)
}

// RequireUnprivilegedUserns skips unless the test runs as a non-root user
// that has subordinate id ranges and newuidmap.
func RequireUnprivilegedUserns(t testing.TB, hasSubIDs bool) {
	t.Helper()
	if os.Geteuid() == 0 {
		Skip(t, "runs as root; namespace tests need an unprivileged user (make test runs them as the test user)")
	}
	if !hasSubIDs {
		Skip(t, "the user has no /etc/subuid and /etc/subgid range (hint: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER)")
	}
}

// HugeFile writes head at path and extends it, sparse, to 1 GiB: a planted
// record that a reader which does not bound what it reads would read
// whole.
func HugeFile(path string, head []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(head)
	if err == nil {
		err = f.Truncate(1 << 30)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
