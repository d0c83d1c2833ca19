package box

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHoldsLock(t *testing.T) {
	locks := filepath.Join(t.TempDir(), "locks")
	os.WriteFile(locks, []byte(""+
		"1: POSIX  ADVISORY  WRITE 4242 08:01:777 0 EOF\n"+
		"2: FLOCK  ADVISORY  WRITE 4242 fe:00:802938 0 EOF\n"+
		"3: FLOCK  ADVISORY  WRITE 99 fe:00:123 0 EOF\n"), 0o644)
	for _, c := range []struct {
		pid      int
		dev, ino uint64
		want     bool
	}{
		{4242, 0xfe00, 802938, true},
		{4242, 0x0801, 777, false}, // a POSIX lock is not the run's flock
		{99, 0xfe00, 802938, false},
		{4242, 0xfe00, 123, false},
	} {
		if got := holdsLock(locks, c.pid, c.dev, c.ino); got != c.want {
			t.Errorf("holdsLock(%d, %x, %d) = %v, want %v", c.pid, c.dev, c.ino, got, c.want)
		}
	}
}
