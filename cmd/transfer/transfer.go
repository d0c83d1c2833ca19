// Package transfer implements `devbox push`, `devbox save` and
// `devbox load`: stored images to a registry, to an OCI archive, and back.
package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/image"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
)

// PushOptions are the parsed flags of `devbox push`.
type PushOptions struct {
	Image string
	Dest  string
	Quiet bool
	JSON  bool
}

// PushResult is `devbox push --json`.
type PushResult struct {
	Image  string `json:"image"`
	Dest   string `json:"dest"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// NewCmdPush builds `devbox push`.
func NewCmdPush(f *cmdutil.Factory, runF func(context.Context, *PushOptions) error) *cobra.Command {
	opts := &PushOptions{}
	cmd := &cobra.Command{
		Use:   "push IMAGE [DEST]",
		Short: "Push a stored image to a registry",
		Long: "Push IMAGE from the store to a registry: to DEST when given, else to IMAGE's own name.\n" +
			"Credentials come from docker login / podman login (as for pulls); a registry listed under\n" +
			"[registries] insecure, or on the loopback, is spoken to over plain HTTP. Mirrors serve pulls\n" +
			"only: a push goes to the registry named. Layers the registry has are not sent again.",
		Example: "  devbox push 127.0.0.1:5000/team/dev:1\n" +
			"  devbox push localhost/dev:1 registry.example.com/team/dev:1",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Image = args[0]
			if len(args) == 2 {
				opts.Dest = args[1]
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return RunPush(c.Context(), f, opts)
		},
	}
	cmd.ValidArgsFunction = cmdutil.FirstArg(cmdutil.CompleteStoredImages(f))
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing but the reference pushed")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON object (schema in docs/json.md)")
	return cmd
}

// storedName is how the user's IMAGE is found in the store: as given
// (a full reference or a digest), else as its full name.
func storedName(s string) []string {
	out := []string{s}
	if n, err := image.LocalName(s); err == nil && n != s {
		out = append(out, n)
	}
	if r, err := name.ParseReference(s); err == nil && image.FullName(r) != s {
		out = append(out, image.FullName(r))
	}
	return out
}

// RunPush pushes the image.
func RunPush(ctx context.Context, f *cmdutil.Factory, opts *PushOptions) error {
	st, err := f.Store()
	if err != nil {
		return err
	}
	regs, err := f.Registry()
	if err != nil {
		return err
	}
	src := opts.Image
	for _, n := range storedName(opts.Image) {
		if _, err := st.Lookup(n); err == nil {
			src = n
			break
		}
	}
	img, err := st.Lookup(src)
	if err != nil {
		return err
	}
	destStr := opts.Dest
	if destStr == "" {
		destStr = img.Ref
	}
	dest, err := name.ParseReference(destStr)
	if err != nil {
		return cmdutil.FlagErrorf("invalid destination %q: %v", destStr, err)
	}
	if err := image.CheckRepository(dest); err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	if dest.Context().RegistryStr() == "localhost" && opts.Dest == "" {
		return cmdutil.FlagErrorf("%s names no registry to push to (hint: give one, e.g. devbox push %s registry.example.com/team/%s)",
			img.Ref, img.Ref, dest.Context().RepositoryStr()+":"+dest.Identifier())
	}
	ios := f.IOStreams
	quiet := opts.Quiet || opts.JSON || ios.Quiet
	p := newProgress(ios, quiet)
	if !quiet {
		fmt.Fprintf(ios.ErrOut, "Pushing %s to %s\n", img.Ref, image.FullName(dest))
	}
	res, err := image.Push(ctx, st, img.Ref, dest, image.Options{Registries: regs, Progress: p.event})
	p.finish()
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(ios, PushResult{Image: res.Ref, Dest: res.Dest, Digest: res.Digest.String(), Size: res.Size})
	}
	if !quiet {
		fmt.Fprintf(ios.ErrOut, "Pushed %s: %s, digest %s\n", res.Dest, cmdutil.HumanBytes(res.Size), res.Digest)
	}
	fmt.Fprintln(ios.Out, res.Dest)
	return nil
}

func writeJSON(ios *iostreams.IOStreams, v any) error {
	enc := json.NewEncoder(ios.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress shows how much of a push was sent: one line rewritten on a
// terminal, nothing otherwise (the final line says it all).
type progress struct {
	ios   *iostreams.IOStreams
	quiet bool
	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newProgress(ios *iostreams.IOStreams, quiet bool) *progress {
	return &progress{ios: ios, quiet: quiet || !ios.ErrTTY}
}

func (p *progress) event(e image.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond && e.Done < e.Total {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.ios.ErrOut, "\r  %s / %s  ", cmdutil.HumanBytes(e.Done), cmdutil.HumanBytes(e.Total))
	p.shown = true
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.ios.ErrOut)
	}
}

// SaveOptions are the parsed flags of `devbox save`.
type SaveOptions struct {
	Image  string
	Output string
}

// NewCmdSave builds `devbox save`.
func NewCmdSave(f *cmdutil.Factory, runF func(context.Context, *SaveOptions) error) *cobra.Command {
	opts := &SaveOptions{}
	cmd := &cobra.Command{
		Use:   "save IMAGE -o FILE",
		Short: "Write a stored image to an OCI archive",
		Long: "Write IMAGE as an OCI archive (a tar of an OCI image layout), which devbox load, podman load,\n" +
			"skopeo (oci-archive:FILE) and other OCI tools read. -o - writes to stdout (not a terminal).\n" +
			"The file appears only when complete.",
		Example: "  devbox save localhost/dev:1 -o dev.tar",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Image = args[0]
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return RunSave(c.Context(), f, opts)
		},
	}
	cmd.ValidArgsFunction = cmdutil.FirstArg(cmdutil.CompleteStoredImages(f))
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "the archive to write (required; - for stdout)")
	_ = cmd.MarkFlagFilename("output", "tar")
	return cmd
}

// RunSave writes the archive.
func RunSave(ctx context.Context, f *cmdutil.Factory, opts *SaveOptions) error {
	if opts.Output == "" {
		return cmdutil.FlagErrorf("devbox save needs -o FILE (hint: devbox save %s -o image.tar)", opts.Image)
	}
	st, err := f.Store()
	if err != nil {
		return err
	}
	src := opts.Image
	for _, n := range storedName(opts.Image) {
		if _, err := st.Lookup(n); err == nil {
			src = n
			break
		}
	}
	ios := f.IOStreams
	if opts.Output == "-" {
		if ios.OutTTY {
			return cmdutil.FlagErrorf("refusing to write an archive to a terminal (hint: devbox save %s -o FILE, or redirect stdout)", opts.Image)
		}
		_, err := image.Save(st, src, ios.Out)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(opts.Output), "."+filepath.Base(opts.Output)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", opts.Output, err)
	}
	defer os.Remove(tmp.Name())
	img, err := image.Save(st, src, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), os.FileMode(0o644&^umask()))
	}
	if err == nil {
		err = os.Rename(tmp.Name(), opts.Output)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", opts.Output, err)
	}
	if !ios.Quiet {
		fmt.Fprintf(ios.ErrOut, "Saved %s to %s\n", img.Ref, opts.Output)
	}
	return nil
}

// LoadOptions are the parsed flags of `devbox load`.
type LoadOptions struct {
	Input string
	Name  string
	Quiet bool
}

// NewCmdLoad builds `devbox load`.
func NewCmdLoad(f *cmdutil.Factory, runF func(context.Context, *LoadOptions) error) *cobra.Command {
	opts := &LoadOptions{}
	cmd := &cobra.Command{
		Use:   "load -i FILE [NAME]",
		Short: "Store the image of an OCI archive",
		Long: "Store the image of an OCI archive (devbox save, podman save --format oci-archive) under\n" +
			"NAME, or the name the archive gives it. The archive is checked as strictly as a pull:\n" +
			"digests, sizes, the config's layer list and every layer's contents.",
		Example: "  devbox load -i dev.tar\n  devbox load -i dev.tar localhost/dev:2",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Name = args[0]
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return RunLoad(c.Context(), f, opts)
		},
	}
	cmd.ValidArgsFunction = cobra.NoFileCompletions // NAME is a new name
	cmd.Flags().StringVarP(&opts.Input, "input", "i", "", "the archive to read (required)")
	_ = cmd.MarkFlagFilename("input", "tar")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing but the reference stored")
	return cmd
}

// RunLoad loads the archive.
func RunLoad(ctx context.Context, f *cmdutil.Factory, opts *LoadOptions) error {
	if opts.Input == "" {
		return cmdutil.FlagErrorf("devbox load needs -i FILE (hint: devbox load -i image.tar)")
	}
	if opts.Input == "-" {
		return cmdutil.FlagErrorf("devbox load reads the archive in place: it needs a file, not stdin (hint: write the archive to a file and give its path to -i)")
	}
	file, err := os.Open(opts.Input)
	if err != nil {
		return fmt.Errorf("loading %s: %w", opts.Input, err)
	}
	defer file.Close()
	st, err := f.Store()
	if err != nil {
		return err
	}
	if _, err := f.Mapping(); err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	res, err := image.Load(ctx, st, file, opts.Name, image.Options{
		Unpack: f.Unpacker(st),
		Remove: f.Remover(context.WithoutCancel(ctx), st),
		Limits: cfg.Limits.Resolve(config.Path()),
	})
	if err != nil {
		return fmt.Errorf("loading %s: %w", opts.Input, err)
	}
	ios := f.IOStreams
	if !opts.Quiet && !ios.Quiet {
		fmt.Fprintf(ios.ErrOut, "Loaded %s: %d layer(s) stored (%s), %d unpacked, digest %s\n",
			res.Ref, res.Downloaded, cmdutil.HumanBytes(res.Bytes), res.Unpacked, res.Digest)
	}
	fmt.Fprintln(ios.Out, res.Ref)
	return nil
}
