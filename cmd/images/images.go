// Package images implements `devbox images` (also `devbox image ls`).
package images

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/spf13/cobra"
)

// Options are the parsed flags.
type Options struct {
	JSON   bool
	Digest bool
}

// NewCmdImages builds the command.
func NewCmdImages(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the images in the local store",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array (schema in docs/json.md)")
	cmd.Flags().BoolVar(&opts.Digest, "digests", false, "show full digests")
	return cmd
}

// Run lists images.
func Run(f *cmdutil.Factory, opts *Options) error {
	st, err := f.Store()
	if err != nil {
		return err
	}
	imgs, err := st.Images()
	if err != nil {
		return err
	}
	if imgs == nil {
		imgs = []store.Image{}
	}
	out := f.IOStreams.Out
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(imgs)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tDIGEST\tPLATFORM\tSIZE\tPULLED")
	for _, i := range imgs {
		d := i.Digest
		if !opts.Digest && len(d) > 19 {
			d = d[7:19]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cmdutil.Printable(i.Ref), d, cmdutil.Printable(i.Platform), size(i.Size), ago(i.Pulled))
	}
	return tw.Flush()
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
