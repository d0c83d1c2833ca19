package run

import (
	"context"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/iostreams"
)

func TestRunLimitFlags(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *Options
	cmd := NewCmdRun(&cmdutil.Factory{IOStreams: ios}, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--memory", "64m", "--cpus", "0.5", "--pids-limit", "20", "debian", "--", "sh", "--memory", "1g"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := cgroup.Limits{Memory: 64 << 20, CPUs: 0.5, PidsLimit: 20}
	if got.Limits != want || got.Image != "debian" || strings.Join(got.Cmd, " ") != "sh --memory 1g" {
		t.Errorf("%+v", got)
	}
}
