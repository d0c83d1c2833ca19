package box

import (
	"errors"
	"slices"
	"strings"
	"testing"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/spf13/cobra"
)

func testFactory() *cmdutil.Factory {
	ios, _, _, _ := iostreams.Test()
	return &cmdutil.Factory{IOStreams: ios}
}

// execute runs c with argv and returns its error.
func execute(c *cobra.Command, argv ...string) error {
	c.SetArgs(argv)
	c.SilenceUsage, c.SilenceErrors = true, true
	return c.Execute()
}

// The verbs that start, enter and remove boxes turn argv into their
// options and nothing else: what reaches the run function (runF) is
// checked here, without a store or a box.
func TestShellAndExecOptions(t *testing.T) {
	for _, c := range []struct {
		name    string
		exec    bool
		argv    []string
		check   func(o *ShellOptions) bool
		wantErr string
	}{
		{"shell", false, []string{"dev"}, func(o *ShellOptions) bool {
			return o.Name == "dev" && o.MayCreate && len(o.Args) == 0 && len(o.changed) == 0
		}, ""},
		{"shell, devbox's flags after NAME", false, []string{"dev", "--root", "--", "ls", "-l"}, func(o *ShellOptions) bool {
			return o.Root && slices.Equal(o.Args, []string{"ls", "-l"})
		}, ""},
		{"shell, the command's flags are its own", false, []string{"dev", "--", "sh", "--root"}, func(o *ShellOptions) bool {
			return !o.Root && slices.Equal(o.Args, []string{"sh", "--root"})
		}, ""},
		{"shell, create flags are remembered", false, []string{"dev", "--image", "fedora", "--memory", "1g", "-t"}, func(o *ShellOptions) bool {
			return o.Image == "fedora" && o.Limits.Memory == 1<<30 && o.TTY &&
				slices.Equal(o.changed, []string{"image", "memory"}) && slices.Equal(o.given["image"], []string{"--image fedora"})
		}, ""},
		{"shell --devcontainer", false, []string{"--devcontainer", "--", "make"}, func(o *ShellOptions) bool {
			return o.Devcontainer == "." && o.Name == "" && slices.Equal(o.Args, []string{"make"})
		}, ""},
		{"shell --devcontainer with a create flag", false, []string{"--devcontainer", "--memory", "1g"}, nil, "--devcontainer takes the box's settings"},
		{"shell without a name", false, nil, nil, "requires at least 1 arg"},
		{"exec", true, []string{"dev", "ls", "-l"}, func(o *ShellOptions) bool {
			return o.Name == "dev" && !o.MayCreate && slices.Equal(o.Args, []string{"ls", "-l"})
		}, ""},
		{"exec -it", true, []string{"-it", "dev", "--", "sh"}, func(o *ShellOptions) bool { return o.TTY }, ""},
		{"exec without a command", true, []string{"dev"}, nil, "exec needs a command"},
		{"exec -t -T", true, []string{"dev", "-t", "-T", "--", "sh"}, nil, "contradict"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got *ShellOptions
			runF := func(o *ShellOptions) error { got = o; return nil }
			cmd := NewCmdShell(testFactory(), runF)
			if c.exec {
				cmd = NewCmdExec(testFactory(), runF)
			}
			err := execute(cmd, c.argv...)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				if got != nil {
					t.Error("the run function was called")
				}
				return
			}
			if err != nil || got == nil || !c.check(got) {
				t.Fatalf("options %+v, err %v", got, err)
			}
		})
	}
}

func TestLifecycleVerbOptions(t *testing.T) {
	f := testFactory()
	var create *dbox.CreateOptions
	if err := execute(NewCmdCreate(f, func(o *dbox.CreateOptions) error { create = o; return nil }),
		"web", "--image", "debian", "-v", "/srv:/srv:ro", "--net", "none", "--pids-limit", "50", "--no-provision"); err != nil {
		t.Fatal(err)
	}
	if create.Name != "web" || create.Image != "debian" || !slices.Equal(create.Volumes, []string{"/srv:/srv:ro"}) ||
		create.Net != "none" || create.Limits != (cgroup.Limits{PidsLimit: 50}) || !create.NoProvision {
		t.Errorf("create: %+v", create)
	}
	var ls *LsOptions
	lsCmd := NewCmdLs(f, func(o *LsOptions) error { ls = o; return nil })
	if err := execute(lsCmd, "--json"); err != nil || !ls.JSON || ls.All {
		t.Errorf("ls --json: %+v, %v", ls, err)
	}
	var stop *StopOptions
	if err := execute(NewCmdStop(f, func(o *StopOptions) error { stop = o; return nil }), "a", "b"); err != nil || !slices.Equal(stop.Names, []string{"a", "b"}) {
		t.Errorf("stop: %+v, %v", stop, err)
	}
	var rm *RmOptions
	if err := execute(NewCmdRm(f, func(o *RmOptions) error { rm = o; return nil }), "-f", "a"); err != nil || !rm.Force || !slices.Equal(rm.Names, []string{"a"}) {
		t.Errorf("rm: %+v, %v", rm, err)
	}
	var prune *PruneOptions
	pruneCmd := func() *cobra.Command { return NewCmdPrune(f, func(o *PruneOptions) error { prune = o; return nil }) }
	if err := execute(pruneCmd(), "-n", "--json"); err != nil || !prune.DryRun || !prune.JSON {
		t.Errorf("prune -n --json: %+v, %v", prune, err)
	}
	prune = nil
	err := execute(pruneCmd(), "--json")
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || prune != nil {
		t.Errorf("prune --json: %v (a flag error before anything runs)", err)
	}
}

func TestSnapshotVerbOptions(t *testing.T) {
	f := testFactory()
	var snap *SnapshotOptions
	snapCmd := func() *cobra.Command {
		return NewCmdSnapshot(f, func(o *SnapshotOptions) error { snap = o; return nil })
	}
	if err := execute(snapCmd(), "--stop", "dev", "before"); err != nil || snap.Name != "dev" || snap.Tag != "before" || !snap.Stop {
		t.Errorf("snapshot: %+v, %v", snap, err)
	}
	snap = nil
	if err := execute(snapCmd(), "--rm", "dev"); err == nil || !strings.Contains(err.Error(), "devbox snapshot --list dev") || snap != nil {
		t.Errorf("snapshot --rm without a tag: %v", err)
	}
	if err := execute(snapCmd(), "--list", "dev"); err != nil || !snap.List || snap.Tag != "" {
		t.Errorf("snapshot --list: %+v, %v", snap, err)
	}
	var rb *RollbackOptions
	if err := execute(NewCmdRollback(f, func(o *RollbackOptions) error { rb = o; return nil }), "dev"); err != nil || rb.Name != "dev" || rb.Tag != "" || rb.Stop {
		t.Errorf("rollback: %+v, %v", rb, err)
	}
	var cl *CloneOptions
	if err := execute(NewCmdClone(f, func(o *CloneOptions) error { cl = o; return nil }), "--stop", "dev", "dev2"); err != nil || cl.Name != "dev" || cl.New != "dev2" || !cl.Stop {
		t.Errorf("clone: %+v, %v", cl, err)
	}
}
