// Package update implements `devbox update`: changing the resource limits
// of running boxes.
package update

import (
	"context"
	"fmt"
	"strings"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/spf13/cobra"
)

// Options are the parsed flags.
type Options struct {
	Boxes  []string
	Limits cgroup.Limits
}

// NewCmdUpdate builds the command.
func NewCmdUpdate(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "update [flags] BOX...",
		Short: "Change the resource limits of running boxes",
		Long: "Change the cgroup limits of running boxes at once; the limits not given stay as\n" +
			"they are. Lowering --memory below what the box uses makes the kernel reclaim\n" +
			"memory, and kill a process of the box when it cannot.",
		Example: "  devbox update web --memory 1g --cpus 1.5\n  devbox update web --pids-limit 512",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Boxes = args
			if !opts.Limits.Any() {
				return cmdutil.FlagErrorf("nothing to update (hint: give a limit, e.g. devbox update %s --memory 1g)", args[0])
			}
			if err := opts.Limits.Validate(); err != nil {
				return cmdutil.FlagErrorf("%v", err)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	cmdutil.AddLimitFlags(cmd.Flags(), &opts.Limits)
	return cmd
}

// Run applies the limits to each box.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	st, err := f.Store()
	if err != nil {
		return err
	}
	all, err := cmdutil.CgroupBoxes(st.ContainersDir())
	if err != nil {
		return err
	}
	var boxes []cmdutil.CgroupBox
	for _, ref := range opts.Boxes {
		b, err := cmdutil.FindCgroupBoxes(all, []string{ref})
		if err != nil {
			if len(all) == 0 || strings.HasPrefix(err.Error(), "no running box") {
				// Why, once: no such box, not running, or no cgroup.
				return cmdutil.ExplainNoCgroup(st, ref)
			}
			return err
		}
		boxes = append(boxes, b...)
	}
	return apply(boxes, opts.Limits)
}

func apply(boxes []cmdutil.CgroupBox, l cgroup.Limits) error {
	for _, b := range boxes {
		if err := cgroup.CheckControllers(b.Box.Root, b.Box.Path, l, cgroup.Subtree); err != nil {
			return fmt.Errorf("box %s: %w", b.Label(), err)
		}
		if err := b.Box.Update(l); err != nil {
			return fmt.Errorf("box %s: %w", b.Label(), err)
		}
	}
	return nil
}
