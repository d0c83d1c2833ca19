// Package df implements `devbox df` (also `devbox system df`): what the
// store holds and what prune would free.
package df

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/spf13/cobra"
)

// Options are the parsed flags.
type Options struct {
	JSON bool
}

// Row is one line of the report (docs/json.md).
type Row struct {
	Total       int   `json:"total"`
	Active      int   `json:"active"`
	Size        int64 `json:"size"`
	Reclaimable int64 `json:"reclaimable"`
}

// Report is `devbox df --json`.
type Report struct {
	Images Row `json:"images"`
	Layers Row `json:"layers"`
	Boxes  Row `json:"boxes"`
	// Unused is what devbox image prune removes: blobs, layers and
	// leftovers nothing uses.
	Unused      Row   `json:"unused"`
	Reclaimable int64 `json:"reclaimable"`
}

// NewCmdDf builds `devbox df`.
func NewCmdDf(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	c := &cobra.Command{
		Use:   "df",
		Short: "Show the disk space images, layers and boxes use, and what prune would free",
		Long: "Show the disk space the store uses: images (their blobs), unpacked layers, boxes (their\n" +
			"writable layers; active = running), and unused data that devbox image prune removes.\n" +
			"RECLAIMABLE is what devbox prune --force would free: the unused data and the stopped\n" +
			"boxes (and the layers only they use, counted under layers). Box sizes count what your\n" +
			"uid can read.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON object (schema in docs/json.md)")
	return c
}

// Run computes and prints the report.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	st, err := f.Store()
	if err != nil {
		return err
	}
	u, err := st.Usage()
	if err != nil {
		return err
	}
	bs := &rbox.Store{Dir: st.ContainersDir()}
	if rt, err := rbox.RuntimeBase(); err == nil {
		bs.RuntimeDir = rt
	}
	rep := Report{
		Images: Row{Total: u.Images, Active: u.ActiveImages, Size: u.ImageBytes},
		Layers: Row{Total: u.Layers, Active: len(u.ActiveLayers), Size: u.LayerBytes},
		Unused: Row{Total: u.Garbage, Size: u.Reclaimable, Reclaimable: u.Reclaimable},
	}
	recs, _ := bs.List()
	isBox := map[string]bool{}
	for _, r := range recs {
		isBox[r.ID] = true
	}
	for _, b := range u.BoxDirs {
		rep.Boxes.Total++
		rep.Boxes.Size += b.Bytes
		switch {
		case isBox[b.ID] && bs.RuntimeDir != "" && bs.Running(b.ID):
			rep.Boxes.Active++
		case isBox[b.ID]:
			rep.Boxes.Reclaimable += b.Bytes
		default:
			// A run's directory: live while its run lock is held (devbox
			// prune removes the dead ones).
			rep.Boxes.Active++
		}
	}
	rep.Reclaimable = rep.Unused.Reclaimable + rep.Boxes.Reclaimable
	if opts.JSON {
		enc := json.NewEncoder(f.IOStreams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
	for _, r := range []struct {
		name string
		row  Row
	}{{"Images", rep.Images}, {"Layers", rep.Layers}, {"Boxes", rep.Boxes}, {"Unused", rep.Unused}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", r.name, r.row.Total, r.row.Active, cmdutil.HumanBytes(r.row.Size), cmdutil.HumanBytes(r.row.Reclaimable))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(f.IOStreams.ErrOut, "Reclaimable: %s (devbox prune --force; --dry-run lists it)\n", cmdutil.HumanBytes(rep.Reclaimable))
	return nil
}
