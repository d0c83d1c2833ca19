package box

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/boxfile"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/network"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
)

// BuildOptions are the flags of `devbox build`.
type BuildOptions struct {
	Box, Tag, Push, Pull string
	NoCache, JSON, Quiet bool
	HostLoopback         bool
}

// NewCmdBuild builds `devbox build`.
func NewCmdBuild(f *cmdutil.Factory) *cobra.Command {
	o := BuildOptions{}
	c := &cobra.Command{
		Use:   "build [FILE]",
		Short: "Make images of the boxes a box file describes, without keeping a box (for CI)",
		Long: "Make an image of each box of box file FILE (default ./devbox.toml; docs/boxfile.md): its\n" +
			"image with its packages installed and its on_create hooks run, in a temporary box that has\n" +
			"an empty home of its own (never yours) and is removed afterwards, also when a step fails or\n" +
			"the build is interrupted. The image gets the box's env in its config, one history entry per\n" +
			"step and its build key as the label dev.devbox.build.key; it is stored as\n" +
			"localhost/NAME:latest, or as -t IMAGE. A box whose key (the base image's digest and\n" +
			"platform, the packages, the hooks, the env, the package repositories) matches the stored\n" +
			"image's is not built again when devbox build made that image here (it records the digest\n" +
			"of each image it builds: a label alone is not trusted): build prints \"cached\"\n" +
			"(--no-cache builds anyway).\n" +
			"Prints one line per box: NAME, IMAGE, DIGEST, built or cached; a failed package install or\n" +
			"hook exits 1 and names the step and its log.",
		Example: "  devbox build\n  devbox build ci/devbox.toml -b web -t team/web:1 --push 127.0.0.1:5000/team/web:1\n" +
			"  devbox build --no-cache --json",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeBoxFile,
		RunE: func(c *cobra.Command, args []string) error {
			return buildRun(c.Context(), f, o, args)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&o.Box, "box", "b", "", "build only box BOX of the file")
	fl.StringVarP(&o.Tag, "tag", "t", "", "store the image as IMAGE (one box; default localhost/NAME:latest)")
	fl.BoolVar(&o.NoCache, "no-cache", false, "build even when the stored image has the same build key")
	fl.StringVar(&o.Pull, "pull", "missing", "pull the boxes' images: missing, always or never")
	fl.StringVar(&o.Push, "push", "", "push the image to DEST afterwards (one box; as devbox push)")
	fl.BoolVar(&o.JSON, "json", false, "print the results as JSON (docs/json.md)")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "no progress; print only the images' references")
	fl.BoolVar(&o.HostLoopback, "host-loopback", false, "let the build's box reach your 127.0.0.1 as "+network.HostName+" (a package repository or proxy there); its hooks reach it too")
	return c
}

func buildRun(ctx context.Context, f *cmdutil.Factory, o BuildOptions, args []string) error {
	path := boxfile.DefaultFile
	if len(args) == 1 {
		path = args[0]
	}
	specs, err := boxfile.Load(path)
	if err != nil {
		return err
	}
	if o.Box != "" {
		var one []boxfile.Spec
		for _, s := range specs {
			if s.Name == o.Box {
				one = append(one, s)
			}
		}
		if len(one) == 0 {
			names := make([]string, len(specs))
			for i, s := range specs {
				names[i] = s.Name
			}
			return cmdutil.FlagErrorf("box file %s has no box %q (hint: it has %s)", path, o.Box, strings.Join(names, ", "))
		}
		specs = one
	}
	// A box built on another box's image comes after it.
	if specs, err = boxfile.BuildOrder(specs); err != nil {
		return err
	}
	if len(specs) > 1 && (o.Tag != "" || o.Push != "") {
		return cmdutil.FlagErrorf("-t and --push name one image, and %s has %d boxes (hint: choose one with -b BOX)", path, len(specs))
	}
	if o.Tag != "" {
		if _, err := image.LocalName(o.Tag); err != nil {
			return cmdutil.FlagErrorf("-t: %v", err)
		}
	}
	if o.Push != "" {
		// Refused before the build, not after it.
		d, err := name.ParseReference(o.Push)
		if err == nil {
			err = image.CheckRepository(d)
		}
		if err != nil {
			return cmdutil.FlagErrorf("invalid --push destination %q: %v", o.Push, err)
		}
	}
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	if err := checkBuildLoopback(specs, cfg.Provision.Repos, o.HostLoopback); err != nil {
		return err
	}
	ios := f.IOStreams
	var progress io.Writer = ios.ErrOut
	if o.Quiet || ios.Quiet {
		progress = io.Discard
	}
	var all []boxfile.BuildResult
	for _, s := range specs {
		logPath, err := dbox.BuildLogPath(s.Name)
		if err != nil {
			return fmt.Errorf("box %s: its build log: %w", s.Name, err)
		}
		b := e.mgr.NewBuilder(logPath, progress)
		b.HostLoopback = o.HostLoopback
		b.Sweep(func(name string) {
			fmt.Fprintf(ios.ErrOut, "devbox: removing box %s, left by a build that was killed\n", name)
		})
		res, err := boxfile.Build([]boxfile.Spec{s}, b, boxfile.BuildOptions{Tag: o.Tag, NoCache: o.NoCache, Pull: o.Pull,
			Push: o.Push, Repos: cfg.Provision.Repos, Progress: progress})
		b.Close()
		all = append(all, res...)
		var se *boxfile.StepError
		if errors.As(err, &se) {
			return &cmdutil.StatusError{Code: cmdutil.ExitStepFailed, Err: fmt.Errorf("%w (log: %s)", err, logPath)}
		}
		if err != nil {
			return err
		}
	}
	switch {
	case o.JSON:
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		if all == nil {
			all = []boxfile.BuildResult{}
		}
		return enc.Encode(all)
	case o.Quiet:
		for _, r := range all {
			fmt.Fprintln(ios.Out, r.Ref)
		}
	default:
		boxfile.BuildSummary(ios.Out, all)
	}
	return nil
}

// checkBuildLoopback refuses, before anything is made, a build that would
// install packages from a repository of the user's configuration on the
// host's loopback (host.devbox.internal) without --host-loopback: the
// build's box cannot reach it then, and apt's error would not say why.
func checkBuildLoopback(specs []boxfile.Spec, repos map[string]string, allowed bool) error {
	if allowed {
		return nil
	}
	for _, s := range specs {
		if len(s.Packages) == 0 {
			continue
		}
		for k, v := range repos {
			if strings.Contains(v, network.HostName) {
				return cmdutil.FlagErrorf("box %s installs packages from provision.repos.%s on your loopback (%s), which a build's box does not reach (hint: devbox build --host-loopback; the box file's hooks then reach your 127.0.0.1 too)",
					s.Name, k, network.HostName)
			}
		}
	}
	return nil
}
