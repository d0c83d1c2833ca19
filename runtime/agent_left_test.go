package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRunningProcesses(t *testing.T) {
	proc := t.TempDir()
	for pid, stat := range map[string]string{
		"1":    "1 (devbox-init) S 0 1",
		"7":    "7 (sleep) S 1 7",
		"8":    "8 (a) b) Z 1 8", // a zombie whose name has a parenthesis
		"9":    "9 (sh) R 1 9",
		"self": "",
	} {
		os.MkdirAll(filepath.Join(proc, pid), 0o755)
		if stat != "" {
			os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(stat), 0o644)
		}
	}
	if n := runningProcesses(proc, 1); n != 2 {
		t.Errorf("runningProcesses = %d, want 2 (sleep and sh: not the init, not the zombie)", n)
	}
}
