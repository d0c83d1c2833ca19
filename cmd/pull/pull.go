// Package pull implements `devbox pull`.
package pull

import (
	"context"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// Options are the parsed flags of `devbox pull`.
type Options struct {
	Refs     []string
	Platform string
	Quiet    bool
}

// NewCmdPull builds the command; runF replaces the run function in tests.
func NewCmdPull(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "pull IMAGE...",
		Short: "Pull images from a registry into the local store",
		Long: "Pull images (an alias such as centos, a name such as ubuntu:24.04, or a full\n" +
			"reference with a tag or @sha256 digest) and unpack them for boxes.\n\n" +
			"An image over a limit of [limits] in config.toml (document size, index depth,\n" +
			"layer count, uncompressed layer and image size, compression ratio) is refused\n" +
			"with the key that raises it; docs/config.md lists them.",
		Example: "  devbox pull debian\n  devbox pull quay.io/fedora/fedora:43 --platform linux/arm64",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Refs = args
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "pull for this platform (os/arch[/variant]) instead of the host's")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing but the references pulled")
	return cmd
}

// Run pulls each reference in turn.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	var plat *v1.Platform
	if opts.Platform != "" {
		p, err := image.ParsePlatform(opts.Platform)
		if err != nil {
			return cmdutil.FlagErrorf("%v", err)
		}
		plat = &p
	}
	for _, r := range opts.Refs {
		if _, err := cmdutil.PullImage(ctx, f, r, plat, opts.Quiet); err != nil {
			return err
		}
	}
	return nil
}
