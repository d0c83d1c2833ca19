// Package rmi implements `devbox rmi` and `devbox image prune`.
package rmi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/spf13/cobra"
)

// Options are the parsed flags.
type Options struct {
	Refs []string
	// Force removes an image that boxes were made from: they keep their
	// layers (image prune spares them) and still start.
	Force bool
}

// NewCmdRmi builds `devbox rmi`.
func NewCmdRmi(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		// No "rm" alias: devbox rm removes boxes.
		Use:   "rmi IMAGE...",
		Short: "Remove images from the local store and free their space",
		Args:  cobra.MinimumNArgs(1),
		// Only what is stored can be removed.
		ValidArgsFunction: cmdutil.CompleteStoredImages(f),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Refs = args
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "remove an image that boxes were made from (they keep its layers and still start)")
	return cmd
}

// Run untags each image, then collects garbage.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	st, err := f.Store()
	if err != nil {
		return err
	}
	tab, err := f.Aliases()
	if err != nil {
		return err
	}
	var failed error
	for _, r := range opts.Refs {
		img, err := st.Lookup(r)
		if errors.Is(err, store.ErrNotFound) {
			if named, _, rerr := image.Resolve(r, tab); rerr == nil {
				img, err = st.Lookup(image.FullName(named))
			}
		}
		if err == nil && !opts.Force {
			if users := boxesOf(st, img.Ref); len(users) > 0 {
				err = fmt.Errorf("image %s is used by box(es) %s (hint: devbox rm %s first, or devbox rmi -f %s removes the image and leaves the boxes their layers)",
					img.Ref, strings.Join(users, ", "), strings.Join(users, " "), r)
			}
		}
		if err == nil {
			err = st.Untag(img.Ref)
		}
		if err != nil {
			fmt.Fprintf(f.IOStreams.ErrOut, "devbox: %v\n", image.SuggestAlias(r, tab, err))
			failed = cmdutil.SilentError
			continue
		}
		fmt.Fprintf(f.IOStreams.Out, "Untagged: %s\n", img.Ref)
	}
	if err := Prune(ctx, f, st, false, false); err != nil {
		return err
	}
	return failed
}

// Prune runs the collector (store.GC): everything no image and no box
// uses goes. With dryRun it only lists it, on stdout.
func Prune(ctx context.Context, f *cmdutil.Factory, st *store.Store, dryRun, asJSON bool) error {
	rep, err := st.GC(store.GCOptions{DryRun: dryRun, Remove: f.Remover(ctx, st)})
	if err != nil {
		return err
	}
	if dryRun {
		if err := cmdutil.PrintGarbage(f.IOStreams.Out, rep.Items, asJSON); err != nil {
			return err
		}
	}
	if len(rep.Items) > 0 && !asJSON || dryRun && !asJSON {
		fmt.Fprintln(f.IOStreams.ErrOut, cmdutil.GCSummary(rep, dryRun))
	}
	return nil
}

// NewCmdPrune builds `devbox image prune`.
func NewCmdPrune(f *cmdutil.Factory) *cobra.Command {
	var dryRun, asJSON bool
	c := &cobra.Command{
		Use:   "prune",
		Short: "Remove blobs and unpacked layers that no image and no box uses, and leftovers of interrupted pulls",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if asJSON && !dryRun {
				return cmdutil.FlagErrorf("--json lists what would go: use it with --dry-run")
			}
			st, err := f.Store()
			if err != nil {
				return err
			}
			return Prune(c.Context(), f, st, dryRun, asJSON)
		},
	}
	c.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "list what would be removed, with sizes, and remove nothing")
	c.Flags().BoolVar(&asJSON, "json", false, "with --dry-run: print a JSON array (schema in docs/json.md)")
	return c
}

// boxesOf names the boxes whose record says they were made from ref.
func boxesOf(st *store.Store, ref string) []string {
	var out []string
	ents, _ := os.ReadDir(st.ContainersDir())
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(st.ContainersDir(), e.Name(), "box.json"))
		if err != nil {
			continue
		}
		var r struct {
			Name  string `json:"name"`
			Image string `json:"image"`
		}
		if json.Unmarshal(b, &r) == nil && r.Image == ref && r.Name != "" {
			out = append(out, strings.Map(func(c rune) rune {
				if c < 0x20 || c == 0x7f {
					return -1
				}
				return c
			}, r.Name))
		}
	}
	sort.Strings(out)
	return out
}
