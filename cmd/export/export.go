// Package export implements `devbox export` and `devbox unexport`: a dev
// box's applications, binaries and services on the host (package export
// does the work).
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	dexport "github.com/devbox-dev/devbox/export"
	"github.com/spf13/cobra"
)

// Options are the flags of `devbox export` and `devbox unexport`.
type Options struct {
	Box     string
	Apps    []string
	Bins    []string
	Dir     string
	Service []string
	List    bool
	JSON    bool
	All     bool // unexport only
}

// NewCmdExport builds `devbox export`.
func NewCmdExport(f *cmdutil.Factory) *cobra.Command {
	o := &Options{}
	c := &cobra.Command{
		Use:   "export NAME (--app APP | --bin PATH | --service UNIT | --list)",
		Short: "Put a dev box's application, command or service on the host",
		Long: "Export from dev box NAME (a box with your own home; sandboxed boxes export nothing):\n" +
			"  --app APP      a desktop entry for the box's APP.desktop in your applications menu\n" +
			"                 ($XDG_DATA_HOME/applications), its icon copied, \"(NAME)\" after its name\n" +
			"  --bin PATH     a launcher in ~/.local/bin (or --dir) that runs PATH in the box with\n" +
			"                 your working directory, arguments, stdio and exit code\n" +
			"  --service UNIT a systemd user unit running the box's UNIT (needs a user manager)\n" +
			"Each runs its program in the box through devbox, starting the box when needed.\n" +
			"devbox unexport NAME and devbox rm NAME remove exactly what was exported.",
		Example: "  devbox export dev --app org.gnome.TextEditor\n  devbox export dev --bin /usr/bin/rg\n" +
			"  devbox export dev --list --json",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.Box = args[0]
			if !o.List && len(o.Apps)+len(o.Bins)+len(o.Service) == 0 {
				return cmdutil.FlagErrorf("nothing to export (hint: --app APP, --bin PATH, --service UNIT, or --list)")
			}
			if o.JSON && !o.List {
				return cmdutil.FlagErrorf("--json goes with --list")
			}
			return runExport(c.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringArrayVar(&o.Apps, "app", nil, "export the box's desktop application APP (its .desktop name)")
	fl.StringArrayVar(&o.Bins, "bin", nil, "export the box's program PATH (or a name in the box's PATH) as a launcher")
	fl.StringVar(&o.Dir, "dir", "", "directory for --bin launchers (default ~/.local/bin)")
	fl.StringArrayVar(&o.Service, "service", nil, "export the box's systemd unit UNIT as a user unit")
	fl.BoolVar(&o.List, "list", false, "list what is exported from the box")
	fl.BoolVar(&o.JSON, "json", false, "with --list: print JSON (docs/json.md)")
	return c
}

// NewCmdUnexport builds `devbox unexport`.
func NewCmdUnexport(f *cmdutil.Factory) *cobra.Command {
	o := &Options{}
	c := &cobra.Command{
		Use:     "unexport NAME (--app APP | --bin NAME | --service UNIT | --all)",
		Short:   "Remove what devbox export put on the host",
		Example: "  devbox unexport dev --bin rg\n  devbox unexport dev --all",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.Box = args[0]
			if !o.All && len(o.Apps)+len(o.Bins)+len(o.Service) == 0 {
				return cmdutil.FlagErrorf("nothing to unexport (hint: --app APP, --bin NAME, --service UNIT, or --all)")
			}
			return runUnexport(c.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringArrayVar(&o.Apps, "app", nil, "remove the exported application APP")
	fl.StringArrayVar(&o.Bins, "bin", nil, "remove the exported launcher NAME")
	fl.StringArrayVar(&o.Service, "service", nil, "remove the exported unit UNIT")
	fl.BoolVar(&o.All, "all", false, "remove everything exported from the box")
	return c
}

// openBox finds dev box name and describes it for package export.
func openBox(f *cmdutil.Factory, name string) (*dexport.Box, func(), error) {
	st, err := f.Store()
	if err != nil {
		return nil, nil, err
	}
	bs, err := box.OpenStore(st)
	if err != nil {
		return nil, nil, err
	}
	r, err := bs.Get(name)
	if err != nil {
		return nil, nil, err
	}
	b, err := dexport.ForRecord(r, bs.BoxDir(r.ID), st.Root, st.LayersDir())
	if err != nil {
		return nil, nil, err
	}
	b.Reader = dexport.StageReader(f.Mapping)
	b.Warn = func(msg string) { fmt.Fprintf(f.IOStreams.ErrOut, "devbox: warning: %s\n", msg) }
	if r.Home != "" {
		return nil, nil, fmt.Errorf("box %s is sandboxed (its own --home): only dev boxes export to the host (hint: devbox create NAME --image %s makes a dev box)", r.Name, r.Image)
	}
	unlock, err := bs.Lock("export-" + r.ID)
	if err != nil {
		return nil, nil, err
	}
	return b, unlock, nil
}

func runExport(_ context.Context, f *cmdutil.Factory, o *Options) error {
	b, unlock, err := openBox(f, o.Box)
	if err != nil {
		return err
	}
	defer unlock()
	ios := f.IOStreams
	if o.List {
		items, err := dexport.Load(b.Dir)
		if err != nil {
			return err
		}
		return printItems(ios.Out, items, o.JSON)
	}
	var done []dexport.Item
	var errs []error
	add := func(it dexport.Item, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		done = append(done, it)
	}
	for _, a := range o.Apps {
		add(b.App(a))
	}
	for _, p := range o.Bins {
		add(b.Bin(p, o.Dir))
	}
	for _, s := range o.Service {
		add(b.Service(s))
	}
	for _, it := range done {
		fmt.Fprintln(ios.Out, it.Path)
		if it.Kind == dexport.KindBin {
			warnNotInPath(ios.ErrOut, filepath.Dir(it.Path))
		}
		if it.Kind == dexport.KindService {
			fmt.Fprintf(ios.ErrOut, "devbox: start it with: systemctl --user enable --now %s\n", filepath.Base(it.Path))
		}
	}
	return errors.Join(errs...)
}

func warnNotInPath(w interface{ Write([]byte) (int, error) }, dir string) {
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.Clean(p) == dir {
			return
		}
	}
	fmt.Fprintf(w, "devbox: note: %s is not in your PATH\n", dir)
}

func runUnexport(_ context.Context, f *cmdutil.Factory, o *Options) error {
	b, unlock, err := openBox(f, o.Box)
	if err != nil {
		return err
	}
	defer unlock()
	var removed []dexport.Item
	var errs []error
	do := func(kind, name string) {
		r, err := b.Unexport(kind, name)
		removed = append(removed, r...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if o.All {
		do("", "")
	}
	for _, a := range o.Apps {
		do(dexport.KindApp, a)
	}
	for _, n := range o.Bins {
		do(dexport.KindBin, n)
	}
	for _, s := range o.Service {
		do(dexport.KindService, s)
	}
	for _, it := range removed {
		fmt.Fprintln(f.IOStreams.Out, it.Path)
	}
	return errors.Join(errs...)
}

func printItems(w interface{ Write([]byte) (int, error) }, items []dexport.Item, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(items, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSOURCE\tPATH")
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Kind, it.Name, it.Source, it.Path)
	}
	return tw.Flush()
}
