package host

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/network/host/status"
)

// fakeEnv makes the test binary a network helper that behaves as its
// value says (fakeHelper).
const fakeEnv = "DEVBOX_TEST_FAKE_NET_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fakeHelper(mode))
	}
	os.Exit(m.Run())
}

// fakeHelper writes the status lines of a helper that fails in one way
// or another, as the real one (network/host/helper) would, on FDStatus.
func fakeHelper(mode string) int {
	_, _ = io.Copy(io.Discard, os.Stdin) // its options
	st := os.NewFile(FDStatus, "status")
	say := func(line string) { _, _ = st.WriteString(line + "\n") }
	switch mode {
	case "fine":
		say(`{"ready":true}`)
		say(`{"down":true}`)
	case "start-error":
		say(`{"error":"gvisor driver: the stack would not start"}`)
		say(`{"down":true}`)
	case "exit":
		say(`{"ready":true}`)
		return 3
	case "hang":
		say(`{"ready":true}`)
		time.Sleep(time.Minute)
	}
	return 0
}

func startFake(t *testing.T, mode string) *Helper {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), fakeEnv+"="+mode)
	h, err := Start(c, Options{Driver: "gvisor", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.CloseInitEnd()
		h.Wait(5 * time.Second)
	})
	return h
}

func TestHelperWatch(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		early bool
		want  string // the warning's reason ("" for none)
	}{
		{"fine", true, ""},
		{"start-error", true, "gvisor driver: the stack would not start"},
		// A start that waited for the helper fails with its error (Err).
		{"start-error", false, ""},
		{"exit", true, "the network helper exited unexpectedly (exit status 3)"},
		{"exit", false, "the network helper exited unexpectedly (exit status 3)"},
		{"hang", true, "the network helper exited unexpectedly (signal: killed)"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			h := startFake(t, tc.mode)
			got := make(chan error, 2)
			h.Watch(tc.early, func(err error) { got <- err })
			if tc.mode == "hang" {
				if err := h.Ready(10 * time.Second); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Kill(h.Pid(), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			if tc.want == "" {
				h.Wait(10 * time.Second) // the helper's end: nothing to say
				<-h.exited
				if err := h.Mute(); err != nil || h.Warned() || len(got) != 0 {
					t.Errorf("a helper that did not fail the box's network: Mute %v, Warned %v, %d warnings", err, h.Warned(), len(got))
				}
				return
			}
			select {
			case err := <-got:
				if err.Error() != tc.want {
					t.Errorf("warned %q, want %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no warning")
			}
			if err := h.Mute(); err == nil || err.Error() != tc.want || !h.Warned() {
				t.Errorf("Mute %v, Warned %v: want the warning's failure", err, h.Warned())
			}
			<-h.down
			if len(got) != 0 {
				t.Errorf("warned again: %v", <-got)
			}
		})
	}
}

// A watch that starts after the failure is told at once; a muted one
// never.
func TestHelperWatchLateAndMuted(t *testing.T) {
	h := startFake(t, "start-error")
	h.Wait(10 * time.Second)
	var got error
	h.Watch(true, func(err error) { got = err })
	if got == nil || got.Error() != "gvisor driver: the stack would not start" {
		t.Errorf("a watch after the failure: %v", got)
	}
	h = startFake(t, "exit")
	if h.Mute() != nil {
		t.Error("Mute before any failure returned one")
	}
	h.Watch(true, func(err error) { t.Errorf("warned after Mute: %v", err) })
	<-h.down
	if err := h.Mute(); err != nil || h.Warned() {
		t.Errorf("muted: Mute %v, Warned %v", err, h.Warned())
	}
	if !errors.Is(h.diedErr, status.ErrExited) {
		t.Errorf("the death was not recorded: %v", h.diedErr)
	}
}

func TestHelperStartFailure(t *testing.T) {
	for mode, want := range map[string]string{
		"fine":        "",
		"exit":        "", // ready, then died: not the start's
		"start-error": "gvisor driver: the stack would not start",
	} {
		h := startFake(t, mode)
		err := h.StartFailure(10 * time.Second)
		if (err == nil) != (want == "") || err != nil && err.Error() != want {
			t.Errorf("%s: StartFailure %v, want %q", mode, err, want)
		}
	}
}
