package agent

import (
	"os"
	"slices"
	"syscall"
	"testing"
)

func TestSessionSignals(t *testing.T) {
	for _, c := range []struct {
		terminal     bool
		has, hasNot  os.Signal
		forwardable  syscall.Signal
		notForwarded syscall.Signal
	}{
		{false, syscall.SIGINT, syscall.SIGWINCH, syscall.SIGUSR1, syscall.SIGKILL},
		{true, syscall.SIGWINCH, syscall.SIGINT, syscall.SIGTERM, syscall.SIGSTOP},
	} {
		got := SessionSignals(c.terminal)
		if !slices.Contains(got, c.has) || slices.Contains(got, c.hasNot) {
			t.Errorf("terminal %v: %v, want %v and not %v", c.terminal, got, c.has, c.hasNot)
		}
		if !Forwardable(c.forwardable) || Forwardable(c.notForwarded) {
			t.Errorf("Forwardable(%v) or Forwardable(%v) wrong", c.forwardable, c.notForwarded)
		}
	}
	// What the session clients watched before this table: both ways the
	// same five, plus SIGINT or SIGWINCH.
	if n := len(SessionSignals(false)); n != 6 {
		t.Errorf("%d signals without a terminal, want 6", n)
	}
}
