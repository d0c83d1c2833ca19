package box

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/boxfile"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/export"
	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/provision"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/spf13/cobra"
)

// assembleLog is where a box's assemble steps (packages, hooks) write
// their output, in its box directory.
const assembleLog = "assemble.log"

// engine does boxfile's work on boxes with the box commands' own code.
type engine struct{ e *env }

func (g engine) Find(name string) (*boxfile.Existing, error) {
	r, err := g.e.bs.Find(name)
	if errors.Is(err, rbox.ErrNotFound) && !rbox.IsBroken(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ex := &boxfile.Existing{ImageID: r.ImageID}
	if r.Problem != nil {
		return ex, nil
	}
	if img, err := g.e.st.Lookup(r.Image); err == nil {
		ex.StoreID = img.ID
	}
	if b, err := g.e.bs.ReadAssembled(r.ID); err == nil {
		ex.Assembled, _ = boxfile.ParseRecord(b) // unreadable: not ours
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return ex, nil
}

func (g engine) Create(s boxfile.Spec) error {
	o := dbox.CreateOptions{Name: s.Name, Image: s.Image, Home: s.Home, Desktop: s.Desktop, Net: s.Network, Volumes: s.Volumes,
		Env: s.Env, Hostname: s.Hostname, Publish: s.Ports, Limits: s.Limits}
	r, err := g.e.mgr.Create(o)
	if errors.Is(err, dbox.ErrExists) {
		return fmt.Errorf("a box named %q already exists", s.Name)
	}
	if err != nil {
		return err
	}
	if len(s.OnStart) > 0 {
		r.OnStart = s.OnStart
		return g.e.bs.Save(r)
	}
	return nil
}

// running returns box name's record, started.
func (g engine) running(name string) (*rbox.Record, *os.File, error) {
	r, err := g.e.bs.Get(name)
	if err != nil {
		return nil, nil, err
	}
	if err := g.e.mgr.Start(r); err != nil {
		return nil, nil, err
	}
	// Opened for each step: never through a link (or into a fifo) that
	// the box planted in its directory meanwhile (docs/security.md).
	log, err := safefile.Append(filepath.Join(g.e.bs.BoxDir(r.ID), assembleLog), 0o600)
	if err != nil {
		return nil, nil, err
	}
	return r, log, nil
}

func (g engine) Install(name string, packages []string) error {
	if len(packages) == 0 {
		return nil
	}
	r, log, err := g.running(name)
	if err != nil {
		return err
	}
	defer log.Close()
	cfg, err := g.e.f.Config()
	if err != nil {
		return err
	}
	return provision.Install(provision.Options{Box: r.Name, Repos: cfg.Provision.Repos, Log: log,
		Progress: g.e.f.IOStreams.ErrOut, Runner: g.e.mgr.Runner(r, 0, 0)}, packages)
}

func (g engine) Hook(name, user, script string) error {
	r, log, err := g.running(name)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "\n### devbox %s: hook: %s\n", time.Now().Format("15:04:05.000"), script)
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}
	run := g.e.mgr.Runner(r, 0, 0)
	if user != "" {
		// As you: your uid and gid, your home.
		acct := dbox.HostAccount(g.e.mgr.Mapping())
		run = g.e.mgr.Runner(r, acct.UID, acct.GID)
		env[1] = "HOME=" + acct.Home
	}
	code, err := run.Run([]string{"/bin/sh", "-c", script}, env, log, log)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit %d (log: %s)", code, log.Name())
	}
	return nil
}

func (g engine) Export(name, bin, app string) error {
	r, err := g.e.bs.Get(name)
	if err != nil {
		return err
	}
	b, err := export.ForRecord(r, g.e.bs.BoxDir(r.ID), g.e.st.Root, g.e.st.LayersDir())
	if err != nil {
		return err
	}
	b.Warn = func(msg string) { fmt.Fprintf(g.e.f.IOStreams.ErrOut, "devbox: warning: %s\n", msg) }
	unlock, err := g.e.bs.Lock("export-" + r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if bin != "" {
		_, err = b.Bin(bin, "")
	} else {
		_, err = b.App(app)
	}
	if err != nil {
		return fmt.Errorf("box %s: exporting %s%s: %w", name, bin, app, err)
	}
	return nil
}

func (g engine) Save(name string, rec boxfile.Record) error {
	r, err := g.e.bs.Get(name)
	if err != nil {
		return err
	}
	b, err := boxfile.MarshalRecord(rec)
	if err != nil {
		return err
	}
	return g.e.bs.SaveAssembled(r.ID, b)
}

func (g engine) Remove(name string) error {
	r, err := g.e.bs.Find(name)
	if err != nil {
		return err
	}
	return g.e.mgr.Remove(r, true)
}

// AssembleOptions are the flags of `devbox assemble`.
type AssembleOptions struct {
	Rm, Replace, DryRun, JSON bool
}

// NewCmdAssemble builds `devbox assemble`.
func NewCmdAssemble(f *cmdutil.Factory) *cobra.Command {
	o := AssembleOptions{}
	c := &cobra.Command{
		Use:   "assemble [FILE]",
		Short: "Create or update the boxes a box file describes (default ./devbox.toml)",
		Long: "Create the boxes box file FILE (default ./devbox.toml; docs/boxfile.md) describes: image,\n" +
			"packages, hooks, exports, ports, volumes, home, network, limits, environment. Run again, it\n" +
			"leaves unchanged boxes alone and rebuilds (removes and creates again) those whose\n" +
			"definition changed or whose image was pulled again, and says why. --rm removes them, with\n" +
			"their exports. Prints one line per box: NAME, what was done, what changed.",
		Example:           "  devbox assemble\n  devbox assemble ci/devbox.toml --dry-run\n  devbox assemble --rm",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeBoxFile,
		RunE: func(c *cobra.Command, args []string) error {
			path := boxfile.DefaultFile
			if len(args) == 1 {
				path = args[0]
			}
			specs, err := boxfile.Load(path)
			if err != nil {
				return err
			}
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			abs, _ := filepath.Abs(path)
			res, err := boxfile.Assemble(specs, engine{e}, boxfile.Options{File: abs, Rm: o.Rm, Replace: o.Replace,
				DryRun: o.DryRun, Progress: f.IOStreams.ErrOut})
			if o.JSON {
				if res == nil {
					res = []boxfile.Result{}
				}
				enc := json.NewEncoder(f.IOStreams.Out)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(res); jerr != nil && err == nil {
					err = jerr
				}
			} else {
				boxfile.Summary(f.IOStreams.Out, res)
			}
			return err
		},
	}
	c.Flags().BoolVar(&o.Rm, "rm", false, "remove the file's boxes (and their exports) instead")
	c.Flags().BoolVar(&o.Replace, "replace", false, "also replace boxes of the same names that devbox assemble did not make")
	c.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would be done, do nothing")
	c.Flags().BoolVar(&o.JSON, "json", false, "print the results as JSON (docs/json.md)")
	return c
}

// completeBoxFile completes a box file argument: a name ending in .toml.
func completeBoxFile(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []string{"toml"}, cobra.ShellCompDirectiveFilterFileExt
}

// devcontainerBox assembles the box of the devcontainer.json of project
// directory dir and returns its name; what devbox ignored is said first.
func devcontainerBox(e *env, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	path, err := boxfile.FindDevcontainer(abs)
	if err != nil {
		return "", err
	}
	s, notes, err := boxfile.LoadDevcontainer(path, abs)
	for _, n := range notes {
		fmt.Fprintf(e.f.IOStreams.ErrOut, "devbox: %s: %s\n", path, n)
	}
	if err != nil {
		return "", err
	}
	res, err := boxfile.Assemble([]boxfile.Spec{s}, engine{e}, boxfile.Options{File: path, Progress: e.f.IOStreams.ErrOut})
	if err != nil {
		return "", err
	}
	if res[0].Action != boxfile.ActionUnchanged {
		fmt.Fprintf(e.f.IOStreams.ErrOut, "devbox: box %s: %s%s\n", s.Name, res[0].Action, changesNote(res[0].Changes))
	}
	return s.Name, nil
}

func changesNote(ch []string) string {
	if len(ch) == 0 {
		return ""
	}
	return " (" + strings.Join(ch, ", ") + ")"
}
