package box

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/spf13/cobra"
)

// SnapshotOptions are the flags of `devbox snapshot`.
type SnapshotOptions struct {
	Name, Tag string
	Stop      bool
	List      bool
	Rm        bool
}

// NewCmdSnapshot builds `devbox snapshot`.
func NewCmdSnapshot(f *cmdutil.Factory, runF func(*SnapshotOptions) error) *cobra.Command {
	o := SnapshotOptions{}
	c := &cobra.Command{
		Use:   "snapshot NAME [TAG]",
		Short: "Freeze a stopped box's changes as a snapshot (no copy; devbox rollback returns to it)",
		Long: "Freeze what box NAME changed since its image (or its last snapshot) as snapshot TAG\n" +
			"(default snapN). Nothing is copied: the box's writable layer becomes a layer of the store\n" +
			"and the box goes on with an empty one on top. The box must be stopped (--stop stops it,\n" +
			"ending its sessions). devbox rollback NAME TAG returns to a snapshot; devbox inspect NAME\n" +
			"lists them. A snapshot's layers stay while a box stacks them; once none does (devbox\n" +
			"snapshot --rm, devbox rm), devbox prune removes them.",
		Example:           "  devbox snapshot dev before-upgrade\n  devbox snapshot --list dev\n  devbox snapshot --rm dev before-upgrade",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: cmdutil.FirstArg(cmdutil.CompleteBoxes(f)),
		RunE: func(c *cobra.Command, args []string) error {
			o.Name, o.Tag = args[0], ""
			if len(args) == 2 {
				o.Tag = args[1]
			}
			if o.Rm && !o.List && o.Tag == "" {
				return cmdutil.FlagErrorf("--rm needs the snapshot's TAG (hint: devbox snapshot --list %s)", o.Name)
			}
			if runF != nil {
				return runF(&o)
			}
			return snapshotRun(c.Context(), f, &o)
		},
	}
	c.Flags().BoolVar(&o.Stop, "stop", false, "stop the box first if it runs (its sessions end)")
	c.Flags().BoolVar(&o.List, "list", false, "list the box's snapshots")
	c.Flags().BoolVar(&o.Rm, "rm", false, "forget snapshot TAG (its layers go with devbox prune once no box stacks them)")
	return c
}

func snapshotRun(ctx context.Context, f *cmdutil.Factory, o *SnapshotOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	if o.List {
		r, err := e.bs.Get(o.Name)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TAG\tCREATED\tLAYERS")
		for _, s := range r.Snapshots {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", s.Tag, s.Created.Local().Format(time.DateTime), len(s.Lowers))
		}
		return tw.Flush()
	}
	if o.Rm {
		if err := e.mgr.DropSnapshot(o.Name, o.Tag); err != nil {
			return err
		}
		fmt.Fprintln(f.IOStreams.Out, o.Tag)
		return nil
	}
	s, err := e.mgr.Snapshot(o.Name, o.Tag, o.Stop)
	if err != nil {
		return err
	}
	fmt.Fprintln(f.IOStreams.Out, s.Tag)
	return nil
}

// RollbackOptions are the flags and arguments of `devbox rollback`.
type RollbackOptions struct {
	Name, Tag string
	Stop      bool
}

// NewCmdRollback builds `devbox rollback`.
func NewCmdRollback(f *cmdutil.Factory, runF func(*RollbackOptions) error) *cobra.Command {
	o := RollbackOptions{}
	c := &cobra.Command{
		Use:   "rollback NAME [TAG]",
		Short: "Return a stopped box to a snapshot, discarding what changed since",
		Long: "Return box NAME to its snapshot TAG (default: the newest), discarding what was written\n" +
			"in the box since its last snapshot or clone. Its snapshots stay, later ones too. Your home\n" +
			"and volumes are not part of a box and are never touched.",
		Example:           "  devbox rollback dev before-upgrade",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: cmdutil.FirstArg(cmdutil.CompleteBoxes(f)),
		RunE: func(c *cobra.Command, args []string) error {
			o.Name, o.Tag = args[0], ""
			if len(args) == 2 {
				o.Tag = args[1]
			}
			if runF != nil {
				return runF(&o)
			}
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			s, err := e.mgr.Rollback(o.Name, o.Tag, o.Stop)
			if err != nil {
				return err
			}
			fmt.Fprintln(f.IOStreams.Out, s.Tag)
			return nil
		},
	}
	c.Flags().BoolVar(&o.Stop, "stop", false, "stop the box first if it runs (its sessions end)")
	return c
}

// CloneOptions are the flags and arguments of `devbox clone`.
type CloneOptions struct {
	Name, New string
	Stop      bool
}

// NewCmdClone builds `devbox clone`.
func NewCmdClone(f *cmdutil.Factory, runF func(*CloneOptions) error) *cobra.Command {
	o := CloneOptions{}
	c := &cobra.Command{
		Use:   "clone NAME NEW",
		Short: "Make box NEW a copy of stopped box NAME that shares all its layers (no copy)",
		Long: "Make box NEW a copy of box NAME: NAME's writable layer is frozen into the store (as for\n" +
			"devbox snapshot) and both boxes stack the same layers, each with its own empty writable\n" +
			"layer; nothing is copied. NEW has NAME's settings (volumes, network, ports, limits,\n" +
			"environment; the same home: your own, or the directory NAME was given with --home) and\n" +
			"none of its snapshots or exports.",
		Example:           "  devbox clone dev dev-experiment",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: cmdutil.FirstArg(cmdutil.CompleteBoxes(f)),
		RunE: func(c *cobra.Command, args []string) error {
			o.Name, o.New = args[0], args[1]
			if runF != nil {
				return runF(&o)
			}
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			n, err := e.mgr.Clone(o.Name, o.New, o.Stop)
			if err != nil {
				return err
			}
			fmt.Fprintln(f.IOStreams.Out, n.Name)
			return nil
		},
	}
	c.Flags().BoolVar(&o.Stop, "stop", false, "stop the box first if it runs (its sessions end)")
	return c
}
