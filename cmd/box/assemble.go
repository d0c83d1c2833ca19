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
	"github.com/spf13/cobra"
)

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
		fmt.Fprintf(e.f.IOStreams.ErrOut, "devbox: %s: %s\n", path, n)
	}
	if err != nil {
		return "", err
	}
	if err := trustHooks(e, path, abs, s, trust); err != nil {
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

// trustHooks lets box s of devcontainer.json path (project directory
// project) be assembled when it runs no hook and sets no environment or
// mount (boxfile.TrustItems), when the user trusted it
// before, with --trust, or when the user says yes on the terminal; the
// answer is remembered. Without a terminal it is an error with a hint.
func trustHooks(e *env, path, project string, s boxfile.Spec, trust bool) error {
	if !boxfile.NeedsTrust(s) {
		return nil
	}
	dir, err := dbox.StateDir()
	if err != nil {
		return err
	}
	tr := boxfile.HookTrust{Dir: filepath.Join(dir, "trust")}
	if tr.Trusted(project, s) {
		return nil
	}
	ios := e.f.IOStreams
	items := boxfile.TrustItems(s)
	for i := range items {
		items[i] = cmdutil.Printable(items[i])
	}
	if !trust {
		if !ios.InTTY || !ios.ErrTTY {
			return cmdutil.FlagErrorf("%s decides what runs as you in a box that shares your home (%s); nothing was run (hint: read it, then devbox shell --devcontainer --trust)", path, strings.Join(items, "; "))
		}
		fmt.Fprintf(ios.ErrOut, "devbox: %s asks to run, as you, in a box of image %s that shares your home:\n  %s\nRun it? [y/N] ",
			cmdutil.Printable(path), cmdutil.Printable(s.Image), strings.Join(items, "\n  "))
		if !yes(ios.In) {
			return fmt.Errorf("%s is not trusted; nothing was run (hint: devbox shell --devcontainer --trust runs it without asking)", path)
		}
	}
	if err := tr.Remember(project, s); err != nil {
		fmt.Fprintf(ios.ErrOut, "devbox: warning: %v (it will be asked again)\n", err)
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
