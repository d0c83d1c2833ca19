package run

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/iostreams"
)

// The flags of devbox run as box.RunOptions: everything after IMAGE is
// the command's.
func TestRunFlags(t *testing.T) {
	for _, c := range []struct {
		args  []string
		check func(o *Options) bool
	}{
		{[]string{"debian"}, func(o *Options) bool { return o.Image == "debian" && len(o.Cmd) == 0 && o.Pull == "missing" }},
		{[]string{"debian", "--", "ls", "-l"}, func(o *Options) bool { return slices.Equal(o.Cmd, []string{"ls", "-l"}) }},
		{[]string{"debian", "ls", "--name", "x"}, func(o *Options) bool { return o.Name == "" && slices.Equal(o.Cmd, []string{"ls", "--name", "x"}) }},
		{[]string{"--name", "web", "--keep", "debian"}, func(o *Options) bool { return o.Name == "web" && o.Keep }},
		{[]string{"-it", "debian"}, func(o *Options) bool { return o.Interactive && o.TTY && !o.NoTTY }},
		{[]string{"-T", "debian"}, func(o *Options) bool { return o.NoTTY && !o.TTY }},
		{[]string{"-e", "A=1", "-e", "B", "-w", "/tmp", "-u", "0:0", "--hostname", "h", "debian"}, func(o *Options) bool {
			return slices.Equal(o.Env, []string{"A=1", "B"}) && o.Workdir == "/tmp" && o.User == "0:0" && o.Hostname == "h"
		}},
		{[]string{"--net", "none", "-p", "8080:80", "--host-loopback", "debian"}, func(o *Options) bool {
			return o.Net == "none" && slices.Equal(o.Publish, []string{"8080:80"}) && o.HostLoopback && !o.NoHostLoopback
		}},
		{[]string{"--pull", "never", "--platform", "linux/arm64", "debian"}, func(o *Options) bool { return o.Pull == "never" && o.Platform == "linux/arm64" }},
		{[]string{"--cap-add", "NET_RAW", "--cap-drop", "CHOWN", "--security-opt", "seccomp=unconfined", "--device", "/dev/kvm", "debian"}, func(o *Options) bool {
			return slices.Equal(o.CapAdd, []string{"NET_RAW"}) && slices.Equal(o.CapDrop, []string{"CHOWN"}) &&
				slices.Equal(o.SecurityOpt, []string{"seccomp=unconfined"}) && slices.Equal(o.Devices, []string{"/dev/kvm"})
		}},
	} {
		ios, _, _, _ := iostreams.Test()
		var got *Options
		cmd := NewCmdRun(&cmdutil.Factory{IOStreams: ios}, func(_ context.Context, o *Options) error { got = o; return nil })
		cmd.SetArgs(c.args)
		if err := cmd.Execute(); err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if !c.check(got) {
			t.Errorf("%v: %+v", c.args, got.RunOptions)
		}
	}
}

// The codes box.Manager.Run returns are the documented ones.
func TestRunExitCodes(t *testing.T) {
	if box.ExitFailure != cmdutil.ExitFailure || box.ExitOOM != cmdutil.ExitOOM {
		t.Errorf("box: %d, %d; cmdutil: %d, %d", box.ExitFailure, box.ExitOOM, cmdutil.ExitFailure, cmdutil.ExitOOM)
	}
}

// report: the exit code and the lines devbox adds for how a run ended.
func TestReport(t *testing.T) {
	failed := errors.New("pulling busybox: connection refused")
	for _, c := range []struct {
		name     string
		res      box.RunResult
		err      error
		wantCode int
		wantErr  string
	}{
		{"success", box.RunResult{}, nil, 0, ""},
		{"the command's code", box.RunResult{Code: 3}, nil, 3, ""},
		{"a signal", box.RunResult{Code: 130}, nil, 130, ""},
		{"oom", box.RunResult{Code: box.ExitOOM, OOM: &box.OOMError{Msg: "the box hit its memory limit"}}, nil, 137, "devbox: the box hit its memory limit\n"},
		{"kept", box.RunResult{KeptAs: "run-01234567"}, nil, 0, "devbox: kept as box run-01234567 (devbox shell run-01234567 enters it; devbox rm run-01234567 removes it)\n"},
		{"kept, then failed", box.RunResult{KeptAs: "run-01234567"}, failed, cmdutil.ExitFailure, "devbox: kept as box run-01234567"},
		{"failed", box.RunResult{}, failed, cmdutil.ExitFailure, ""},
	} {
		var out strings.Builder
		err := report(&out, c.res, c.err)
		if got := cmdutil.ExitCode(err); got != c.wantCode {
			t.Errorf("%s: exit code %d, want %d", c.name, got, c.wantCode)
		}
		if c.err != nil && !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want the run's error", c.name, err)
		}
		if c.wantErr == "" && out.Len() != 0 || !strings.HasPrefix(out.String(), c.wantErr) {
			t.Errorf("%s: stderr %q, want %q", c.name, out.String(), c.wantErr)
		}
	}
}
