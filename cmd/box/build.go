package box

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/boxfile"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/image"
	icommit "github.com/devbox-dev/devbox/image/commit"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/provision"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// buildHomePrefix starts the names of build boxes' homes, in $TMPDIR.
const buildHomePrefix = "devbox-build-home-"

// buildGrace keeps a build box up between its steps (it is stopped for
// the commit and removed after).
const buildGrace = 3600

// builder does boxfile.Build's work with the box commands' own code.
type builder struct {
	e *env
	// log (at logPath) is the packages' and hooks' output, made anew once
	// a box is made: a cached build leaves the last one alone.
	logPath  string
	log      *os.File
	progress io.Writer         // the package managers' progress lines
	homes    map[string]string // the temporary boxes' homes, by box name
	// held are the build locks of the temporary boxes, by name: a box
	// whose lock is free belongs to a build that was killed (sweep).
	held map[string]func()
}

// buildLock is the lock a build holds while its temporary box name lives.
func buildLock(name string) string { return "build-" + name }

func (b *builder) Base(ref, policy string) (boxfile.Base, error) {
	saved := b.e.f.IOStreams.Quiet
	b.e.f.IOStreams.Quiet = saved || b.progress == io.Discard
	img, cfg, err := b.e.mgr.Image(ref, "", policy)
	b.e.f.IOStreams.Quiet = saved
	if err != nil {
		return boxfile.Base{}, err
	}
	plat := cfg.OS + "/" + cfg.Architecture
	if cfg.Variant != "" {
		plat += "/" + cfg.Variant
	}
	return boxfile.Base{Ref: img.Ref, ID: img.ID, Platform: plat, Env: cfg.Config.Env}, nil
}

func (b *builder) Built(ref string) (string, string, bool, error) {
	img, err := b.e.st.Lookup(ref)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	// The label is read from the stored config, checked against its
	// digest; anything odd is an image to build again.
	h, err := v1.NewHash(img.ID)
	if err != nil {
		return "", "", false, nil
	}
	m, err := b.e.st.Manifest(h)
	if err != nil {
		return "", "", false, nil
	}
	cfg, err := b.e.st.ConfigFile(m.Config.Digest)
	if err != nil {
		return "", "", false, nil
	}
	key := cfg.Config.Labels[boxfile.LabelBuildKey]
	if !boxfile.ValidKey(key) {
		return "", "", false, nil
	}
	return key, img.ID, true, nil
}

// buildBoxName is a fresh name for a temporary box of box file box name.
func buildBoxName(name string) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	if len(name) > 48 {
		name = name[:48]
	}
	return name + "-build-" + hex.EncodeToString(r[:])
}

func (b *builder) Start(s boxfile.Spec, base boxfile.Base) (string, error) {
	if b.log == nil {
		f, err := openBuildLog(b.logPath)
		if err != nil {
			return "", fmt.Errorf("opening the build log: %w", err)
		}
		b.log = f
	}
	// A home of its own, empty and outside the store: the box is a
	// sandbox, your home is not in it and cannot end up in the image.
	home, err := os.MkdirTemp("", buildHomePrefix)
	if err != nil {
		return "", err
	}
	o := dbox.CreateOptions{Name: buildBoxName(s.Name), Image: base.Ref, Home: home, Grace: buildGrace, NoProvision: true,
		// Repositories and proxies on the host's loopback serve the
		// packages, as they do for assemble's dev boxes.
		HostLoopback: true}
	// Held before the box exists, until it is gone.
	unlock, forget, held, err := b.e.bs.TryLock(buildLock(o.Name))
	if err == nil && held {
		err = fmt.Errorf("the name %s is taken (hint: build again)", o.Name)
	}
	if err != nil {
		os.Remove(home)
		return "", err
	}
	b.held[o.Name] = func() { forget(); unlock() }
	r, err := b.e.mgr.Create(o)
	if err != nil {
		os.Remove(home)
		b.release(o.Name)
		return "", err
	}
	b.homes[r.Name] = home
	if r.ImageID != base.ID {
		return r.Name, fmt.Errorf("image %s changed while the build started (hint: build again)", base.Ref)
	}
	if err := b.e.mgr.Start(r); err != nil {
		return r.Name, err
	}
	return r.Name, nil
}

// running returns build box name's record, started.
func (b *builder) running(name string) (*rbox.Record, error) {
	r, err := b.e.bs.Get(name)
	if err != nil {
		return nil, err
	}
	return r, b.e.mgr.Start(r)
}

// interrupted returns context.Canceled once the build was interrupted
// (Ctrl-C also ends the command running in the box), else err: the
// signal may reach the command's runner before it cancels the context.
func (b *builder) interrupted(err error) error {
	if err != nil && (b.e.ctx.Err() != nil || errors.Is(err, dbox.ErrInterrupted)) {
		return context.Canceled
	}
	return err
}

func (b *builder) Install(box string, packages []string) error {
	r, err := b.running(box)
	if err != nil {
		return err
	}
	cfg, err := b.e.f.Config()
	if err != nil {
		return err
	}
	fmt.Fprintf(b.log, "\n### devbox build %s: packages: %s\n", time.Now().Format("15:04:05.000"), strings.Join(packages, " "))
	return b.interrupted(provision.Install(provision.Options{Box: r.Name, Repos: cfg.Provision.Repos, Log: b.log,
		Progress: b.progress, Runner: b.e.mgr.Runner(r, 0, 0)}, packages))
}

func (b *builder) Run(box string, env []string, script string) (int, error) {
	r, err := b.running(box)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(b.log, "\n### devbox build %s: on_create: %s\n", time.Now().Format("15:04:05.000"), script)
	env = boxfile.MergeEnv([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}, env)
	code, err := b.e.mgr.Runner(r, 0, 0).Run([]string{"/bin/sh", "-c", script}, env, b.log, b.log)
	return code, b.interrupted(err)
}

func (b *builder) Commit(box string, c boxfile.Commit) (string, error) {
	r, unlock, err := b.e.mgr.LockStopped(box, "build", true)
	if err != nil {
		return "", err
	}
	defer unlock()
	base, err := v1.NewHash(r.ImageID)
	if err != nil {
		return "", fmt.Errorf("box %s: its record names no image digest", r.Name)
	}
	req, err := icommit.BoxRequest(b.e.bs.BoxDir(r.ID), b.e.layerDirs(r))
	if err != nil {
		return "", err
	}
	cfg, err := b.e.f.Config()
	if err != nil {
		return "", err
	}
	var hist []v1.History
	for i, s := range c.Steps {
		hist = append(hist, v1.History{CreatedBy: s, EmptyLayer: i < len(c.Steps)-1})
	}
	res, err := icommit.Commit(b.e.ctx, b.e.st, icommit.Options{
		Ref: c.Ref, BaseID: base, Read: req, Mapping: b.e.mgr.Mapping(),
		Unpack: b.e.f.Unpacker(b.e.st), Remove: b.e.f.Remover(context.WithoutCancel(b.e.ctx), b.e.st), Limits: cfg.Limits.Resolve(config.Path()),
		History: hist,
		Edit: func(cc *v1.Config) error {
			cc.Env = c.Env
			if cc.Labels == nil {
				cc.Labels = map[string]string{}
			}
			for k, v := range c.Labels {
				cc.Labels[k] = v
			}
			return nil
		},
	})
	if err != nil {
		return "", err
	}
	return res.ID.String(), nil
}

// layerDirs are box r's lower layers as directories of the store.
func (e *env) layerDirs(r *rbox.Record) []string {
	var out []string
	for _, l := range r.Lowers {
		out = append(out, filepath.Join(e.st.LayersDir(), l))
	}
	return out
}

func (b *builder) Discard(box string) error {
	// Also after Ctrl-C: the removal runs to its end.
	ce := b.e.mgr.WithContext(context.WithoutCancel(b.e.ctx))
	r, err := b.e.bs.Find(box)
	if err == nil {
		err = ce.Remove(r, true)
	} else if errors.Is(err, rbox.ErrNotFound) && !rbox.IsBroken(err) {
		err = nil
	}
	if home := b.homes[box]; home != "" {
		if rerr := os.RemoveAll(home); rerr != nil {
			// Files of the box's other users: removed in the namespace.
			rerr = ce.Remover()([]string{home})
			if err == nil && rerr != nil {
				err = rerr
			}
		}
		delete(b.homes, box)
	}
	if err == nil {
		b.release(box)
	}
	return err
}

// release lets go of the build lock of temporary box name.
func (b *builder) release(name string) {
	if done := b.held[name]; done != nil {
		done()
		delete(b.held, name)
	}
}

// sweep removes the temporary boxes (and their homes) of builds that were
// killed: their build lock exists and is free.
func (b *builder) sweep() {
	all, err := b.e.bs.List()
	if err != nil {
		return
	}
	for _, r := range all {
		if !strings.Contains(r.Name, "-build-") || !b.e.bs.HasLock(buildLock(r.Name)) {
			continue
		}
		unlock, forget, held, err := b.e.bs.TryLock(buildLock(r.Name))
		if err != nil || held {
			continue // a build in progress
		}
		fmt.Fprintf(b.e.f.IOStreams.ErrOut, "devbox: removing box %s, left by a build that was killed\n", r.Name)
		if err := b.e.mgr.Remove(r, true); err != nil {
			fmt.Fprintf(b.e.f.IOStreams.ErrOut, "devbox: warning: %v (hint: devbox rm -f %s)\n", err, r.Name)
		} else {
			if h := r.Home; strings.HasPrefix(filepath.Base(h), buildHomePrefix) && filepath.Dir(h) == filepath.Clean(os.TempDir()) {
				if os.RemoveAll(h) != nil {
					_ = b.e.f.Remover(b.e.ctx, b.e.st)([]string{h})
				}
			}
			forget()
		}
		unlock()
	}
	// The locks of builds whose box is gone (removed by hand).
	names := map[string]bool{}
	for _, r := range all {
		names[r.Name] = true
	}
	locks, _ := filepath.Glob(filepath.Join(b.e.bs.LocksDir, buildLock("*")+".lock"))
	for _, l := range locks {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(l), buildLock("")), ".lock")
		if names[name] {
			continue
		}
		if unlock, forget, held, err := b.e.bs.TryLock(buildLock(name)); err == nil && !held {
			forget()
			unlock()
		}
	}
}

func (b *builder) Push(ref, dest string) (string, error) {
	d, err := name.ParseReference(dest)
	if err != nil {
		return "", cmdutil.FlagErrorf("invalid --push destination %q: %v", dest, err)
	}
	regs, err := b.e.f.Registry()
	if err != nil {
		return "", err
	}
	res, err := image.Push(b.e.ctx, b.e.st, ref, d, image.Options{Registries: regs})
	if err != nil {
		return "", err
	}
	return res.Dest, nil
}

// buildLogPath is where the log of building box file box name goes:
// $XDG_STATE_HOME/devbox/build/NAME.log.
func buildLogPath(box string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "devbox", "build", box+".log"), nil
}

// openBuildLog makes the build log at p anew.
func openBuildLog(p string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(p)
	return safefile.Create(p, 0, 0o600)
}

// BuildOptions are the flags of `devbox build`.
type BuildOptions struct {
	Box, Tag, Push, Pull string
	NoCache, JSON, Quiet bool
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
			"image's is not built again: build prints \"cached\" (--no-cache builds anyway).\n" +
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
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	ios := f.IOStreams
	var progress io.Writer = ios.ErrOut
	if o.Quiet || ios.Quiet {
		progress = io.Discard
	}
	var all []boxfile.BuildResult
	for _, s := range specs {
		logPath, err := buildLogPath(s.Name)
		if err != nil {
			return fmt.Errorf("box %s: its build log: %w", s.Name, err)
		}
		b := &builder{e: e, logPath: logPath, progress: progress, homes: map[string]string{}, held: map[string]func(){}}
		b.sweep()
		res, err := boxfile.Build([]boxfile.Spec{s}, b, boxfile.BuildOptions{Tag: o.Tag, NoCache: o.NoCache, Pull: o.Pull,
			Push: o.Push, Repos: cfg.Provision.Repos, Progress: progress})
		if b.log != nil {
			b.log.Close()
		}
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
