package run

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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

func TestFinishCgroupOOM(t *testing.T) {
	root := t.TempDir()
	p := "/u/devbox-1"
	dir := filepath.Join(root, p)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n"), 0o644)
	b, _ := cgroup.Load(root, p)
	f, _ := b.File()
	box := t.TempDir()
	cgroup.WriteRecord(box, p)
	var errOut bytes.Buffer
	code := finishCgroup(&errOut, b, f, box, cgroup.Limits{Memory: 64 << 20}, 137)
	if code != 137 || !strings.Contains(errOut.String(), "devbox: the box hit its memory limit (--memory 64MiB): the kernel killed a process in it") {
		t.Errorf("code %d, %q", code, errOut.String())
	}
	if _, err := cgroup.ReadRecord(box); err == nil {
		t.Error("the record is left")
	}
	if code := finishCgroup(&errOut, nil, nil, box, cgroup.Limits{}, 3); code != 3 {
		t.Errorf("no cgroup: code %d", code)
	}
}
