package update

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/iostreams"
)

func TestNewCmdUpdate(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *Options
	cmd := NewCmdUpdate(&cmdutil.Factory{IOStreams: ios}, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"web", "--memory", "1g", "--cpus", "2"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Boxes[0] != "web" || got.Limits.Memory != 1<<30 || got.Limits.CPUs != 2 {
		t.Errorf("%+v", got)
	}
	for _, args := range [][]string{{"web"}, {"web", "--memory-swap", "1g"}, {"--memory", "1g"}} {
		cmd := NewCmdUpdate(&cmdutil.Factory{IOStreams: ios}, func(context.Context, *Options) error { return nil })
		cmd.SetArgs(args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		var fe *cmdutil.FlagError
		if err == nil || (len(args) > 1 && args[0] == "web" && !errors.As(err, &fe)) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestApply(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "u", "devbox-1")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("memory pids\n"), 0o644)
	for _, f := range []string{"memory.max", "pids.max"} { // as the kernel has them
		os.WriteFile(filepath.Join(dir, f), []byte("max\n"), 0o644)
	}
	b, _ := cgroup.Load(root, "/u/devbox-1")
	boxes := []box.CgroupBox{{ID: "1", Name: "web", Box: b}}
	if err := apply(boxes, cgroup.Limits{Memory: 128 << 20, PidsLimit: 9}); err != nil {
		t.Fatal(err)
	}
	if m, _ := os.ReadFile(filepath.Join(dir, "memory.max")); string(m) != "134217728" {
		t.Errorf("memory.max %q", m)
	}
	err := apply(boxes, cgroup.Limits{CPUs: 1})
	if err == nil || !strings.Contains(err.Error(), "box web: cannot apply --cpus: the cpu controller is not enabled") {
		t.Errorf("got %v", err)
	}
}
