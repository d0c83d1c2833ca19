// Package commit implements `devbox commit`: a box's image plus its
// writable layer as a new image in the store (image/commit).
package commit

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/image"
	icommit "github.com/devbox-dev/devbox/image/commit"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// Options are the parsed flags of `devbox commit`.
type Options struct {
	Box     string
	Image   string
	Author  string
	Message string
	// Changes are --change instructions (Dockerfile CMD, ENTRYPOINT,
	// ENV, LABEL, USER, WORKDIR).
	Changes []string
	Quiet   bool
	JSON    bool
}

// Result is `devbox commit --json`.
type Result struct {
	Ref    string `json:"ref"`
	ID     string `json:"id"`
	DiffID string `json:"diffID"`
	Layer  string `json:"layer"`
	Size   int64  `json:"size"`
	Bytes  int64  `json:"bytes"`
}

// NewCmdCommit builds the command; runF replaces the run function in tests.
func NewCmdCommit(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "commit NAME IMAGE",
		Short: "Make an image of a box: its image plus what changed in it",
		Long: "Store box NAME as image IMAGE: the box's image with one more layer, what changed in the\n" +
			"box. The layer never contains your home (it is bound in, not part of the box), your account\n" +
			"lines in /etc/passwd, /etc/group and /etc/shadow or the sudoers drop-in devbox adds at every\n" +
			"start, nor the empty mount points devbox made; files deleted in the box are deleted in the\n" +
			"image (OCI whiteouts). The box must be stopped. A name without a registry is stored under\n" +
			"localhost/, as podman does (run and create find it by the short name too). Push the image\n" +
			"with devbox push, or save it with devbox save; any OCI engine (podman, docker, Kubernetes)\n" +
			"runs it.\n\n" +
			"--change applies a Dockerfile instruction to the image's config (repeat it for more):\n" +
			"CMD and ENTRYPOINT in exec form ([\"prog\", \"arg\"]) or shell form (run by /bin/sh -c),\n" +
			"ENV and LABEL KEY=VALUE..., USER user[:group], WORKDIR DIR (made in the box first: it is\n" +
			"not created). As in a Dockerfile, an ENTRYPOINT clears the image's CMD unless a CMD is\n" +
			"given too.",
		Example: "  devbox commit dev localhost/dev:1\n" +
			"  devbox commit dev 127.0.0.1:5000/team/dev:1 -m \"with the build tools\" -a \"Ann <ann@example.com>\"\n" +
			"  devbox commit dev dev:2 --change 'CMD [\"make\", \"test\"]' --change 'ENV CI=true' --change 'WORKDIR /src'",
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Box, opts.Image = args[0], args[1]
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Author, "author", "a", "", "the image's author (config author and history)")
	cmd.Flags().StringVarP(&opts.Message, "message", "m", "", "a comment for the image's history entry")
	cmd.Flags().StringArrayVarP(&opts.Changes, "change", "c", nil, "apply a Dockerfile instruction to the image's config: CMD, ENTRYPOINT, ENV, LABEL, USER or WORKDIR")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing but the image's reference")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON object (schema in docs/json.md)")
	return cmd
}

// Run commits the box.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	ref, err := image.LocalName(opts.Image)
	if err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	for flag, v := range map[string]string{"--author": opts.Author, "--message": opts.Message} {
		if err := icommit.CheckText(flag, v); err != nil {
			return cmdutil.FlagErrorf("%v", err)
		}
	}
	var changes []icommit.Change
	for _, c := range opts.Changes {
		ch, err := icommit.ParseChange(c)
		if err != nil {
			return cmdutil.FlagErrorf("%v", err)
		}
		changes = append(changes, ch)
	}
	st, err := f.Store()
	if err != nil {
		return err
	}
	bs, err := box.OpenStore(st)
	if err != nil {
		return err
	}
	rec, err := bs.Get(opts.Box)
	if err != nil {
		return err
	}
	unlock, err := bs.Lock("box-" + rec.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if bs.Running(rec.ID) || st.RunLive(rec.ID) {
		return fmt.Errorf("box %s is running; commit reads a stopped box (hint: devbox stop %s)", rec.Name, rec.Name)
	}
	base, err := v1.NewHash(rec.ImageID)
	if err != nil {
		return fmt.Errorf("box %s: its record names no image digest (hint: recreate it)", rec.Name)
	}
	var lowers []string
	for _, l := range rec.Lowers {
		lowers = append(lowers, filepath.Join(st.LayersDir(), l))
	}
	req, err := icommit.BoxRequest(bs.BoxDir(rec.ID), lowers)
	if err != nil {
		return fmt.Errorf("committing box %s: %w", rec.Name, err)
	}
	m, err := f.Mapping()
	if err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	ios := f.IOStreams
	quiet := opts.Quiet || opts.JSON || ios.Quiet
	if !quiet {
		fmt.Fprintf(ios.ErrOut, "Committing box %s as %s\n", rec.Name, ref)
	}
	res, err := icommit.Commit(ctx, st, icommit.Options{
		Ref: ref, BaseID: base, Read: req, Mapping: m,
		Unpack: f.Unpacker(st), Remove: f.Remover(context.WithoutCancel(ctx), st), Limits: cfg.Limits.Resolve(config.Path()),
		Author: opts.Author, Message: opts.Message, CreatedBy: "devbox commit " + rec.Name,
		Edit: func(c *v1.Config) error { icommit.ApplyChanges(c, changes); return nil },
	})
	if err != nil {
		return fmt.Errorf("committing box %s: %w", rec.Name, err)
	}
	if opts.JSON {
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(Result{Ref: res.Ref, ID: res.ID.String(), DiffID: res.DiffID.String(), Layer: res.Blob.String(), Size: res.Size, Bytes: res.Bytes})
	}
	if !quiet {
		fmt.Fprintf(ios.ErrOut, "Committed %s: layer %s (%s compressed), digest %s\n",
			res.Ref, cmdutil.HumanBytes(res.Bytes), cmdutil.HumanBytes(res.Size), res.ID)
	}
	fmt.Fprintln(ios.Out, res.Ref)
	return nil
}
