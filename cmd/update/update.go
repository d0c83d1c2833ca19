// Package update implements `devbox update`: changing the resource limits
// of running boxes.
package update

import (
	"context"
	"fmt"
	"strings"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	rbox "github.com/devbox-dev/devbox/runtime/box"
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
		Short: "Change the resource limits of boxes",
		Long: "Change the cgroup limits of boxes; the limits not given stay as they are. A running\n" +
			"box gets them at once, and a box keeps them for its next starts (a stopped box gets\n" +
			"them at its next start). Lowering --memory below what the box uses makes the kernel\n" +
			"reclaim memory, and kill a process of the box when it cannot. Where boxes get no\n" +
			"cgroup (no usable cgroup v2), it says why.",
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
	all, err := box.CgroupBoxes(st.ContainersDir())
	if err != nil {
		return err
	}
	bs, err := box.OpenStore(st)
	if err != nil {
		return err
	}
	var boxes []box.CgroupBox
	var keep, later []*rbox.Record
	for _, ref := range opts.Boxes {
		b, err := box.FindCgroupBoxes(all, []string{ref})
		if err == nil {
			boxes = append(boxes, b...)
			if r, ferr := bs.Get(ref); ferr == nil && r.ID == b[0].ID {
				keep = append(keep, r) // a box (not a run): for its next starts too
			}
			continue
		}
		if !strings.HasPrefix(err.Error(), "no running box") {
			return err
		}
		// A stopped box keeps them for its next start, where boxes get a
		// cgroup; otherwise say why, once: no such box, or no cgroup.
		if r, ferr := bs.Get(ref); ferr == nil && !bs.Running(r.ID) && !st.RunLive(r.ID) && box.CgroupsUnusable() == nil {
			later = append(later, r)
			continue
		}
		return box.ExplainNoCgroup(st, ref)
	}
	if err := apply(boxes, opts.Limits); err != nil {
		return err
	}
	for _, r := range append(keep, later...) {
		if err := saveLimits(bs, r, opts.Limits); err != nil {
			return err
		}
	}
	for _, r := range later {
		fmt.Fprintf(f.IOStreams.ErrOut, "devbox: box %s is not running: it gets %s at its next start\n", r.Name, strings.Join(opts.Limits.Flags(), ", "))
	}
	return nil
}

// saveLimits records the new limits in box r's record, under the box's
// lock (a start reads it).
func saveLimits(bs *rbox.Store, r *rbox.Record, l cgroup.Limits) error {
	unlock, err := bs.Lock("box-" + r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := bs.Get(r.ID)
	if err != nil {
		return err
	}
	next := cur.Limits.Over(l)
	if err := next.Validate(); err != nil {
		return cmdutil.FlagErrorf("box %s: %v", cur.Name, err)
	}
	cur.Limits = next
	if err := bs.Save(cur); err != nil {
		return fmt.Errorf("box %s: keeping its limits: %w", cur.Name, err)
	}
	return nil
}

func apply(boxes []box.CgroupBox, l cgroup.Limits) error {
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
