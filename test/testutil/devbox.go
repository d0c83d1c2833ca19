package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce  sync.Once
	binPath  string
	binErr   string
	builtDir string
)

// RemoveBuiltDevbox removes the binary DevboxBin built, if it built one;
// call it from TestMain after m.Run.
func RemoveBuiltDevbox() {
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
}

// DevboxBin returns the devbox binary under test: $DEVBOX_BIN (make test
// sets it), or one built from this tree once per test binary. It skips (or,
// under DEVBOX_TEST_NOSKIP, fails) when neither is possible.
func DevboxBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("DEVBOX_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "devbox-bin-")
		if err != nil {
			binErr = err.Error()
			return
		}
		builtDir = dir
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = "/usr/local/go/bin/go"
		}
		p := filepath.Join(dir, "devbox")
		cmd := exec.Command(gobin, "build", "-o", p, "github.com/devbox-dev/devbox/cmd/devbox")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = "DEVBOX_BIN is not set and building devbox failed: " + err.Error() + ": " + string(out)
			return
		}
		binPath = p
	})
	if binErr != "" {
		Skip(t, binErr)
	}
	return binPath
}

// DevboxOnPath returns a new directory in which "devbox" runs the binary
// under test, for tests that find devbox through PATH (shell completion).
func DevboxOnPath(t testing.TB) string {
	t.Helper()
	bin := DevboxBin(t)
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "devbox")); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	probeOnce sync.Once
	probePath string
	probeErr  string
)

// ProbeBin returns the escape suite's attacker program (test/probe), a
// static binary: $DEVBOX_TEST_PROBE (make test builds it), or one built
// from this tree once per test binary.
func ProbeBin(t testing.TB) string {
	t.Helper()
	probeOnce.Do(func() {
		if p := os.Getenv("DEVBOX_TEST_PROBE"); p != "" {
			probePath = p
			return
		}
		dir, err := os.MkdirTemp("", "devbox-probe-")
		if err != nil {
			probeErr = err.Error()
			return
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = "/usr/local/go/bin/go"
		}
		p := filepath.Join(dir, "probe")
		cmd := exec.Command(gobin, "build", "-o", p, "github.com/devbox-dev/devbox/test/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = "DEVBOX_TEST_PROBE is not set and building test/probe failed: " + err.Error() + ": " + string(out)
			return
		}
		probePath = p
	})
	if probeErr != "" {
		Skip(t, probeErr)
	}
	return probePath
}
