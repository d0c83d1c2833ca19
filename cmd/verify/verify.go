// Package verify implements `devbox verify`: the store's integrity check
// (store.Verify) and repair (store.Repair), and the boxes' records.
package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/image/store"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// Options are the parsed flags.
type Options struct {
	Repair bool
	JSON   bool
}

// Report is `devbox verify --json`: the store's report plus the boxes.
type Report struct {
	*store.VerifyReport
	Boxes int `json:"boxes"`
}

// NewCmdVerify builds `devbox verify`.
func NewCmdVerify(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check the store: rehash every blob, check every unpacked layer, image and box record",
		Long: "Check the store after a crash or a full disk: every blob is rehashed, every unpacked layer\n" +
			"must be a directory with its completion marker, every image must have its manifest, config,\n" +
			"layer blobs and unpacked layers intact, every box record must be usable and its layers present.\n" +
			"Layers unpacked by a devbox older than completion markers are counted, not checked.\n" +
			"Leftovers that devbox prune removes are counted, not problems.\n\n" +
			"--repair removes damaged blobs and layers, untags the images that lost a piece (and names\n" +
			"them: pull them again), removes what nothing uses, and checks again. Boxes are never removed.\n\n" +
			"Exit status: 0 when no problem is left, 1 when problems are found (or left), 125 on error.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	c.Flags().BoolVar(&opts.Repair, "repair", false, "remove damaged entries and untag the images that need a new pull")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON object (schema in docs/json.md)")
	return c
}

// Run verifies (and repairs) the store and prints the report.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	st, err := f.Store()
	if err != nil {
		return err
	}
	rep, err := st.Verify()
	if err != nil {
		return err
	}
	if opts.Repair && len(rep.Problems) > 0 {
		if rep, err = st.Repair(rep, f.Remover(context.WithoutCancel(ctx), st)); err != nil {
			return err
		}
	}
	bs := &rbox.Store{Dir: st.ContainersDir()}
	damage, nboxes, err := bs.CheckAll(func(chain string) bool {
		return st.HasLayer(v1.Hash{Algorithm: "sha256", Hex: filepath.Base(chain)})
	})
	if err != nil {
		return err
	}
	for _, d := range damage {
		rep.Problems = append(rep.Problems, store.Problem{Kind: "box", Name: d.Name, Issue: d.Issue})
	}
	out, errOut := f.IOStreams.Out, f.IOStreams.ErrOut
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(Report{VerifyReport: rep, Boxes: nboxes}); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintf(out, "%s %s: %s\n", p.Kind, p.Name, p.Issue)
		}
	}
	if opts.JSON {
		if len(rep.Problems) > 0 {
			return &cmdutil.ExitError{Code: cmdutil.ExitChecksFailed}
		}
		return nil
	}
	for _, d := range rep.Repaired {
		fmt.Fprintln(errOut, "Repaired: "+d)
	}
	for _, ref := range rep.PullAgain {
		fmt.Fprintf(errOut, "Pull again: devbox pull %s\n", ref)
	}
	fmt.Fprintf(errOut, "Checked %d image(s), %d blob(s), %d layer(s), %d box(es): %d problem(s)", rep.Images, rep.Blobs, rep.Layers, nboxes, len(rep.Problems))
	if rep.Unmarked > 0 {
		fmt.Fprintf(errOut, "; %d layer(s) unpacked by an older devbox cannot be checked", rep.Unmarked)
	}
	if rep.Garbage > 0 {
		fmt.Fprintf(errOut, "; %d unused entr(ies), %s, that devbox image prune removes", rep.Garbage, cmdutil.HumanBytes(rep.GarbageBytes))
	}
	fmt.Fprintln(errOut)
	if len(rep.Problems) > 0 {
		if !opts.Repair {
			fmt.Fprintln(errOut, "devbox: the store has problems (hint: devbox verify --repair)")
		}
		return &cmdutil.ExitError{Code: cmdutil.ExitChecksFailed}
	}
	return nil
}
