package box

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/boxfile"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/internal/termsafe"
	"github.com/spf13/cobra"
)

// AssembleOptions are the flags of `devbox assemble`.
type AssembleOptions struct {
	Rm, Replace, DryRun, JSON bool
	// Trust runs the file's hooks and makes its exports without asking
	// (and remembers they are trusted).
	Trust bool
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
			"their exports. Prints one line per box: NAME, what was done, what changed.\n\n" +
			"A file's hooks run as you and its exports put commands on your PATH: before it runs a\n" +
			"file's hooks or makes its exports the first time (or after they changed), assemble shows\n" +
			"them and asks; without a terminal it refuses unless --trust is given.",
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
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			if !o.Rm && !o.DryRun {
				retry := "devbox assemble --trust"
				if len(args) == 1 {
					retry += " " + cmdutil.Visible(path)
				}
				ask := trustAsk{File: path, Project: abs, Specs: specs, Hook: "on_create", Env: "env", Mounts: "volumes", Retry: retry}
				if err := trustHooks(f.IOStreams, ask, o.Trust); err != nil {
					return err
				}
			}
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			res, err := boxfile.Assemble(specs, e.mgr.Engine(), boxfile.Options{File: abs, Rm: o.Rm, Replace: o.Replace,
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
	c.Flags().BoolVar(&o.Trust, "trust", false, "run the file's hooks and make its exports without asking (they run as you); remembered until the file's boxes change")
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
// A postCreateCommand runs only when the user trusts this project with
// this content (trustHooks).
func devcontainerBox(e *env, dir string, trust bool) (string, error) {
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
		fmt.Fprintf(e.f.IOStreams.ErrOut, "devbox: %s: %s\n", termsafe.Visible(path), n)
	}
	if err != nil {
		return "", err
	}
	ask := trustAsk{File: path, Project: abs, Specs: []boxfile.Spec{s}, Hook: "postCreateCommand", Env: "containerEnv", Mounts: "mounts", Retry: "devbox shell --devcontainer --trust"}
	if err := trustHooks(e.f.IOStreams, ask, trust); err != nil {
		return "", err
	}
	res, err := boxfile.Assemble([]boxfile.Spec{s}, e.mgr.Engine(), boxfile.Options{File: path, Progress: e.f.IOStreams.ErrOut})
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

// trustAsk is what a file asks to run on the user's behalf: the hooks,
// exports, environment, mounts and exposed ports of its boxes. devbox shell --devcontainer and devbox
// assemble both ask with it (trustHooks).
type trustAsk struct {
	File    string // the file that asks, for the messages
	Project string // what a yes is remembered for, with each box's content
	Specs   []boxfile.Spec
	Hook    string // what the file calls a create hook: postCreateCommand, on_create
	Env     string // what it calls the environment: containerEnv, env
	Mounts  string // what it calls mounts: mounts, volumes
	Retry   string // the command line that says yes in advance
}

// asks lists what box s would run or put on the host, one "kind: what"
// per item, as the file calls them. Each value is shown exactly
// (cmdutil.Visible): a value with a newline, a control or a bidi
// control is quoted with it escaped, so that the user agrees to what runs.
func (a trustAsk) asks(s boxfile.Spec) []string {
	var l []string
	for _, h := range s.OnCreate {
		l = append(l, a.Hook+": "+cmdutil.Visible(h))
	}
	for _, h := range s.OnStart {
		l = append(l, "on_start: "+cmdutil.Visible(h))
	}
	for _, b := range s.Bins {
		l = append(l, "export bin: "+cmdutil.Visible(b))
	}
	for _, x := range s.Apps {
		l = append(l, "export app: "+cmdutil.Visible(x))
	}
	for _, kv := range s.Env {
		l = append(l, a.Env+": "+cmdutil.Visible(kv))
	}
	for _, v := range s.Volumes {
		l = append(l, a.Mounts+": "+cmdutil.Visible(v))
	}
	for _, x := range boxfile.Exposed(s) {
		l = append(l, "exposes: "+cmdutil.Visible(x))
	}
	return l
}

// where says where box s runs what it asks.
func where(s boxfile.Spec) string {
	w := "in box " + cmdutil.Visible(s.Name) + " of image " + cmdutil.Visible(s.Image)
	if s.Home == "" {
		return w + ", which shares your home"
	}
	return w + ", with a home of its own"
}

// trustHooks lets the boxes of a be assembled when none runs a hook or
// exports a command, when the user trusted each before (this project with
// this content), with trust (--trust), or when the user says yes on the
// terminal; the yes is remembered. Without a terminal it is an error
// naming what would run, with the hint a.Retry.
func trustHooks(ios *iostreams.IOStreams, a trustAsk, trust bool) error {
	dir, err := dbox.StateDir()
	if err != nil {
		return err
	}
	tr := boxfile.HookTrust{Dir: filepath.Join(dir, "trust")}
	var ask []boxfile.Spec
	for _, s := range a.Specs {
		if boxfile.NeedsTrust(s) && !tr.Trusted(a.Project, s) {
			ask = append(ask, s)
		}
	}
	if len(ask) == 0 {
		return nil
	}
	path := cmdutil.Visible(a.File)
	if !trust {
		if !ios.InTTY || !ios.ErrTTY {
			var l []string
			for _, s := range ask {
				l = append(l, fmt.Sprintf("%q %s", strings.Join(a.asks(s), "; "), where(s)))
			}
			return cmdutil.FlagErrorf("%s asks to run, as you, %s; nothing was run (hint: read it, then %s)",
				path, strings.Join(l, ", and "), a.Retry)
		}
		fmt.Fprintf(ios.ErrOut, "devbox: %s asks to run, as you:\n", path)
		for _, s := range ask {
			fmt.Fprintf(ios.ErrOut, "  %s:\n", where(s))
			for _, l := range a.asks(s) {
				fmt.Fprintf(ios.ErrOut, "    %s\n", l)
			}
		}
		fmt.Fprint(ios.ErrOut, "Run it? [y/N] ")
		if !yes(ios.In) {
			return fmt.Errorf("%s is not trusted; nothing was run (hint: %s runs it without asking)", path, a.Retry)
		}
	}
	for _, s := range ask {
		if err := tr.Remember(a.Project, s); err != nil {
			fmt.Fprintf(ios.ErrOut, "devbox: warning: %v (it will be asked again)\n", err)
			break
		}
	}
	return nil
}

// yes reads one line from in, byte by byte (what follows it stays for the
// box's command), and reports whether it is y or yes.
func yes(in io.Reader) bool {
	var line []byte
	b := make([]byte, 1)
	for len(line) < 64 {
		n, err := in.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		if err != nil {
			break
		}
	}
	a := strings.ToLower(strings.TrimSpace(string(line)))
	return a == "y" || a == "yes"
}
