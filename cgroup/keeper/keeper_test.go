package keeper

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

const envRun = "KEEPER_TEST_RUN"

func TestMain(m *testing.M) {
	if os.Getenv(envRun) != "" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// TestKeeperWaitsForTERM: the keeper outlives SIGHUP and ends, status 0,
// on SIGTERM.
func TestKeeperWaitsForTERM(t *testing.T) {
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), envRun+"=1")
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	time.Sleep(300 * time.Millisecond) // its signal handlers are set
	c.Process.Signal(syscall.SIGHUP)
	select {
	case err := <-done:
		t.Fatalf("the keeper ended on SIGHUP: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	c.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		t.Fatal("the keeper did not end on SIGTERM")
	}
}
