package box

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/export"
	nethost "github.com/devbox-dev/devbox/network/host"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/spf13/cobra"
)

func addCreateFlags(c *cobra.Command, o *dbox.CreateOptions, withImage bool) {
	fl := c.Flags()
	if withImage {
		fl.StringVarP(&o.Image, "image", "i", "", "image or alias to make the box from (default: the box name as an alias)")
	}
	fl.StringVar(&o.Home, "home", "", "host directory to use as your home in the box (default: your home)")
	fl.BoolVar(&o.Desktop, "desktop", false, "with --home: bind the part of your desktop session that cannot start programs on the host (Wayland); never the session bus, X11, the SSH agent, or audio unless --audio")
	fl.BoolVar(&o.Audio, "audio", false, "with --home --desktop: bind PipeWire and PulseAudio too; their protocols let the box load modules into your audio server on the host (code that runs as you there): only for an image you trust")
	fl.StringArrayVarP(&o.Volumes, "volume", "v", nil, "bind SRC:DST[:ro] from the host into the box")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "set KEY=VALUE in every session of the box")
	fl.StringVar(&o.Hostname, "hostname", "", "the box's hostname (default: its name)")
	fl.IntVar(&o.Grace, "grace", 0, "seconds the box keeps running after its last session (default 10)")
	fl.StringVar(&o.Platform, "platform", "", "image platform when pulling (os/arch[/variant])")
	fl.StringArrayVar(&o.CapAdd, "cap-add", nil, "add a capability to the box's default set for its root sessions (e.g. SYS_PTRACE, ALL)")
	fl.StringArrayVar(&o.CapDrop, "cap-drop", nil, "drop a capability from the box's default set (e.g. CHOWN, ALL)")
	fl.StringArrayVar(&o.SecurityOpt, "security-opt", nil, "seccomp=unconfined (no syscall filter) or no-new-privileges (sudo stops working)")
	cmdutil.AddLimitFlags(fl, &o.Limits)
	addNetworkFlags(c, o)
	fl.StringArrayVar(&o.Devices, "device", nil, "bind a host device into the box: a character or block device you can open (/dev/kvm, /dev/ttyUSB0, /dev/video0) or /dev/dri, /dev/bus/usb")
	fl.BoolVar(&o.NoProvision, "no-provision", false, "do not install sudo, your locale, less, ps and your shell at the first start of a dev box")
}

// NewCmdCreate builds `devbox create`.
func NewCmdCreate(f *cmdutil.Factory, runF func(*dbox.CreateOptions) error) *cobra.Command {
	o := dbox.CreateOptions{}
	c := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a persistent box (entered with devbox shell NAME)",
		Long: "Create a persistent box NAME, entered with devbox shell NAME.\n\n" +
			"A box with your own home is a convenience, not a sandbox: it shares your home, display,\n" +
			"audio and agents on purpose. For an image you do not trust, use --home DIR (a sandboxed\n" +
			"box) or devbox run (docs/security.md).\n\n" +
			"At its first start a dev box gets what the image lacks of sudo, your LANG's locale, less,\n" +
			"ps and your shell, from the image's own package manager (--no-provision: never; devbox\n" +
			"shell --reprovision NAME: again). With an NVIDIA driver on the host, dev boxes get its\n" +
			"device nodes, libraries and programs (read-only).\n" + cmdutil.DevBoxLoopbackNote,
		Example: "  devbox create dev --image fedora\n  devbox create work --image ubuntu --home ~/boxes/work -v /srv/data:/data:ro\n  devbox create vm --image debian --device /dev/kvm",
		Args:    cobra.ExactArgs(1),
		// A new name: offer the aliases (the default image is the alias
		// of the same name), not the existing boxes.
		ValidArgsFunction: cmdutil.FirstArg(cmdutil.CompleteAliases(f)),
		RunE: func(c *cobra.Command, args []string) error {
			o.Name = args[0]
			if runF != nil {
				return runF(&o)
			}
			return createRun(c.Context(), f, &o)
		},
	}
	addCreateFlags(c, &o, true)
	return c
}

func createRun(ctx context.Context, f *cmdutil.Factory, o *dbox.CreateOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	r, err := e.mgr.Create(*o)
	if errors.Is(err, dbox.ErrExists) {
		return fmt.Errorf("a box named %q already exists (hint: devbox shell %s enters it; devbox rm %s removes it)", o.Name, o.Name, o.Name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(f.IOStreams.Out, r.Name)
	return nil
}

// ShellOptions are the flags of `devbox shell` (and exec, launch).
type ShellOptions struct {
	dbox.CreateOptions
	Root  bool
	TTY   bool
	NoTTY bool
	// Reprovision runs first-start provisioning again.
	Reprovision bool
	// Devcontainer is the project directory whose devcontainer.json
	// makes the box (shell --devcontainer).
	Devcontainer string
	// Trust runs the devcontainer.json's postCreateCommand without asking
	// (and remembers it is trusted).
	Trust bool
	// Args is the command and its arguments (empty: the login shell).
	Args []string
	// MayCreate: a missing box is created (shell, not exec).
	MayCreate bool
	// changed are the create flags given: refused for an existing box
	// that differs (dbox.Manager.CheckExisting).
	changed []string
	given   map[string][]string
}

// NewCmdShell builds `devbox shell`, the main job.
func NewCmdShell(f *cmdutil.Factory, runF func(*ShellOptions) error) *cobra.Command {
	o := ShellOptions{MayCreate: true}
	c := &cobra.Command{
		Use:   "shell NAME|ALIAS [--] [COMMAND [ARG...]]",
		Short: "Enter a box as yourself (creating it from an alias or --image on first use)",
		Long: "Enter box NAME with your user name, home and desktop session. When no box NAME\n" +
			"exists and NAME is an alias (centos, fedora, ubuntu, …) or --image is given, the\n" +
			"box is created first. With a command, run it and return its exit code.\n\n" +
			"Flags between NAME and -- are devbox's, everything after -- is the command's. The\n" +
			"creation flags (--image, -v, -p, --net, --memory, …) only shape a new box: for an\n" +
			"existing box that differs they are refused, with the command that would apply them.\n" +
			"enter is another name for shell.\n" + cmdutil.DevBoxLoopbackNote,
		Example: "  devbox shell centos\n  devbox shell fedora -- make test\n  devbox shell dev --root",
		Aliases: []string{"enter"},
		Args: func(c *cobra.Command, args []string) error {
			if o.Devcontainer != "" {
				return nil // the box is the project's
			}
			return cobra.MinimumNArgs(1)(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			if o.Devcontainer != "" {
				// The box is the project's: args are the command.
				if ch, _ := changedCreateFlags(c); len(ch) > 0 {
					return cmdutil.FlagErrorf("--devcontainer takes the box's settings from devcontainer.json, not from --%s", ch[0])
				}
				o.Args = args
			} else {
				o.Name = args[0]
				// Flags after NAME (before "--") are devbox's.
				var err error
				if o.Args, err = cmdutil.ParseAfterName(c, args[1:]); err != nil {
					return err
				}
				o.changed, o.given = changedCreateFlags(c)
			}
			if runF != nil {
				return runF(&o)
			}
			return shellRun(c.Context(), f, &o)
		},
	}
	c.Flags().SetInterspersed(false)
	addCreateFlags(c, &o.CreateOptions, true)
	c.Flags().BoolVar(&o.Root, "root", false, "enter as root of the box (your subordinate root, never host root)")
	c.Flags().BoolVarP(&o.TTY, "tty", "t", false, "allocate a terminal even when stdin is not one")
	c.Flags().BoolVarP(&o.NoTTY, "no-tty", "T", false, "never allocate a terminal")
	c.Flags().BoolVar(&o.Reprovision, "reprovision", false, "install sudo, your locale, less, ps and your shell again if missing (the first start of a dev box does)")
	c.Flags().StringVar(&o.Devcontainer, "devcontainer", "", "make and enter the box of DIR's .devcontainer/devcontainer.json (image, containerEnv, remoteUser, forwardPorts, postCreateCommand, mounts); without =DIR, the current directory's")
	c.Flags().Lookup("devcontainer").NoOptDefVal = "."
	c.Flags().BoolVar(&o.Trust, "trust", false, "with --devcontainer: run its postCreateCommand without asking (it runs as you, in a box that shares your home); remembered until devcontainer.json changes")
	return c
}

// NewCmdExec builds `devbox exec`: like shell, for scripts (no implicit
// create). As with shell, a terminal is allocated when stdin and stdout
// are terminals; -i and -t are accepted with docker's meaning.
func NewCmdExec(f *cmdutil.Factory, runF func(*ShellOptions) error) *cobra.Command {
	o := ShellOptions{}
	var interactive bool
	c := &cobra.Command{
		Use:   "exec NAME [--] COMMAND [ARG...]",
		Short: "Run a command in an existing box (starting it if needed)",
		Long: "Run COMMAND in the existing box NAME, starting the box if needed. Flags between\n" +
			"NAME and -- are devbox's, everything after -- is the command's. stdin is always\n" +
			"passed on (-i is accepted for docker's habit); a terminal is allocated when stdin\n" +
			"and stdout are terminals, or with -t; -T never allocates one.",
		Example: "  devbox exec dev -- make -C ~/src/project\n  devbox exec dev -t -- htop\n  devbox exec -it dev -- sh",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.Name = args[0]
			var err error
			if o.Args, err = cmdutil.ParseAfterName(c, args[1:]); err != nil {
				return err
			}
			if len(o.Args) == 0 {
				return cmdutil.FlagErrorf("exec needs a command (hint: devbox exec %s -- COMMAND, or devbox shell %s for a shell)", o.Name, o.Name)
			}
			if o.TTY && o.NoTTY {
				return cmdutil.FlagErrorf("-t and -T contradict each other")
			}
			if runF != nil {
				return runF(&o)
			}
			return shellRun(c.Context(), f, &o)
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().BoolVar(&o.Root, "root", false, "run as root of the box")
	c.Flags().BoolVarP(&o.TTY, "tty", "t", false, "allocate a terminal even when stdin is not one")
	c.Flags().BoolVarP(&o.NoTTY, "no-tty", "T", false, "never allocate a terminal")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "pass stdin on (always done; accepted for docker's -i)")
	return c
}

// shellRun enters box o.Name (or the box of o.Devcontainer's project) and
// runs o.Args there, starting the box when it does not answer.
func shellRun(ctx context.Context, f *cmdutil.Factory, o *ShellOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	eo := dbox.EnterOptions{CreateOptions: o.CreateOptions, MayCreate: o.MayCreate,
		Reprovision: o.Reprovision, Changed: o.changed, Given: o.given}
	if o.Devcontainer != "" {
		// Assembled (created, or rebuilt when its devcontainer.json
		// changed), then entered.
		if eo.Name, err = devcontainerBox(e, o.Devcontainer, o.Trust); err != nil {
			return err
		}
		eo.MayCreate = false
	}
	r, err := e.mgr.Enter(eo)
	if err != nil {
		return err
	}
	ios := f.IOStreams
	terminal := (ios.InTTY && ios.OutTTY && !o.NoTTY) || o.TTY
	so := sessionOpts{Args: o.Args, Root: o.Root, Terminal: terminal}
	// Warm path first: a running box answers at once. Only when nobody
	// serves the socket is the box started (under its lock).
	code, err := e.session(r, so)
	if errors.Is(err, errNotRunning) {
		if err = e.mgr.Start(r); err == nil {
			code, err = e.session(r, so)
		}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &cmdutil.ExitError{Code: code}
	}
	return nil
}

// portsColumn is the PORTS column of devbox ls: host → box, published
// and automatic ones.
func portsColumn(n *nethost.State) string {
	if n == nil || len(n.Ports) == 0 {
		return "-"
	}
	var ps []string
	for _, p := range n.Ports {
		if p.NotForwarded != "" {
			continue
		}
		ps = append(ps, fmt.Sprintf("%s:%d->%d/%s", p.HostIP, p.HostPort, p.BoxPort, p.Proto))
	}
	if len(ps) == 0 {
		return "-"
	}
	return strings.Join(ps, ",")
}

// LsOptions are the flags of `devbox ls`.
type LsOptions struct {
	JSON bool
	// All also lists the devbox runs in progress (--all, or called as ps).
	All bool
}

// NewCmdLs builds `devbox ls`.
func NewCmdLs(f *cmdutil.Factory, runF func(*LsOptions) error) *cobra.Command {
	o := LsOptions{}
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list", "ps"},
		Short:   "List your boxes (with --all, or as ps, also the devbox runs in progress)",
		Long: "List your boxes. With --all, or called as devbox ps, also the ephemeral boxes of\n" +
			"devbox run commands in progress (no name: they are shown by id, which devbox stop\n" +
			"takes), with their ports.",
		Example: "  devbox ls\n  devbox ps --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			o.All = o.All || c.CalledAs() == "ps"
			if runF != nil {
				return runF(&o)
			}
			return lsRun(c.Context(), f, &o)
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array (schema in docs/json.md)")
	c.Flags().BoolVarP(&o.All, "all", "a", false, "also list the ephemeral boxes of devbox run commands in progress")
	return c
}

func lsRun(ctx context.Context, f *cmdutil.Factory, o *LsOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	out, err := e.mgr.List(o.All)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(f.IOStreams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGE\tSTATUS\tSESSIONS\tCREATED\tPORTS")
	for _, l := range out {
		name, status, created := l.Name, l.Status, l.Created.Local().Format("2006-01-02 15:04")
		if l.Problem != "" {
			created = "-"
			if l.State.Running {
				status = "broken, running"
			}
		}
		if l.Run {
			status = "running (devbox run)"
			if name == "" {
				name, created = l.ID[:12], "-"
			}
		}
		// A record is input: its image reference is printed
		// without terminal escapes.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", name, cmdutil.Printable(l.Image), status, l.State.Sessions, created, portsColumn(l.Network))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The reasons go to stderr: stdout carries only the table.
	for _, l := range out {
		if l.Problem != "" {
			fmt.Fprintf(f.IOStreams.ErrOut, "devbox: warning: %s\n", cmdutil.Printable(l.Problem))
		}
	}
	return nil
}

// InspectOptions are the arguments of `devbox inspect`.
type InspectOptions struct {
	Names []string
}

// NewCmdInspect builds `devbox inspect`.
func NewCmdInspect(f *cmdutil.Factory, runF func(*InspectOptions) error) *cobra.Command {
	o := InspectOptions{}
	return &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Print a box's record and state as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.Names = args
			if runF != nil {
				return runF(&o)
			}
			return inspectRun(c.Context(), f, &o)
		},
	}
}

func inspectRun(ctx context.Context, f *cmdutil.Factory, o *InspectOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	var out []dbox.Listing
	for _, n := range o.Names {
		r, err := e.bs.Find(n)
		if err != nil {
			return err
		}
		out = append(out, e.mgr.Describe(r))
	}
	enc := json.NewEncoder(f.IOStreams.Out)
	enc.SetIndent("", "  ")
	if len(out) == 1 {
		return enc.Encode(out[0])
	}
	return enc.Encode(out)
}

// StopOptions are the arguments of `devbox stop`.
type StopOptions struct {
	Names []string // boxes, or ids of devbox runs in progress
}

// NewCmdStop builds `devbox stop`.
func NewCmdStop(f *cmdutil.Factory, runF func(*StopOptions) error) *cobra.Command {
	o := StopOptions{}
	return &cobra.Command{
		Use: "stop NAME...",
		Long: "Stop boxes and wait until they are down: their sessions get SIGTERM, then SIGKILL\n" +
			"after 3 s, and each is told why it ended. A devbox run in progress (devbox ps\n" +
			"lists them; an ephemeral one by its id) is stopped the same way: its command gets\n" +
			"SIGTERM, then SIGKILL.",
		Short: "Stop boxes and wait until they are down (sessions get SIGTERM, then SIGKILL after 3 s)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.Names = args
			if runF != nil {
				return runF(&o)
			}
			return stopRun(c.Context(), f, &o)
		},
	}
}

func stopRun(ctx context.Context, f *cmdutil.Factory, o *StopOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	for _, n := range o.Names {
		name, err := e.mgr.StopAny(n)
		if err != nil {
			return err
		}
		fmt.Fprintln(f.IOStreams.Out, name)
	}
	return nil
}

// RmOptions are the flags and arguments of `devbox rm`.
type RmOptions struct {
	Names []string
	Force bool
}

// NewCmdRm builds `devbox rm`.
func NewCmdRm(f *cmdutil.Factory, runF func(*RmOptions) error) *cobra.Command {
	o := RmOptions{}
	c := &cobra.Command{
		Use:   "rm [-f] NAME...",
		Short: "Remove boxes (your home and volumes are never touched)",
		Long: "Remove boxes: their record and what was installed in them; your home and volumes\n" +
			"are never touched. A running box without sessions (one waiting out its grace\n" +
			"period) is stopped first; one with sessions needs -f, which ends them.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.Names = args
			if runF != nil {
				return runF(&o)
			}
			return rmRun(c.Context(), f, &o)
		},
	}
	c.Flags().BoolVarP(&o.Force, "force", "f", false, "stop a running box first")
	return c
}

// rmRun removes each box it can and says why for the others, once each.
func rmRun(ctx context.Context, f *cmdutil.Factory, o *RmOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	var failed error
	for _, n := range o.Names {
		r, err := e.bs.Find(n)
		if err == nil {
			err = e.mgr.Remove(r, o.Force)
		}
		if err != nil {
			fmt.Fprintf(f.IOStreams.ErrOut, "devbox: %v\n", err)
			failed = cmdutil.SilentError
			continue
		}
		fmt.Fprintln(f.IOStreams.Out, r.Name)
	}
	return failed
}

// PruneOptions are the flags of `devbox prune`.
type PruneOptions struct {
	Force, DryRun, JSON bool
}

// NewCmdPrune builds `devbox prune`.
func NewCmdPrune(f *cmdutil.Factory, runF func(*PruneOptions) error) *cobra.Command {
	o := PruneOptions{}
	c := &cobra.Command{
		Use:   "prune",
		Short: "Remove every stopped box, leftovers of interrupted runs, and image data nothing uses",
		Long: "Remove every stopped box (with --force; its runtime directory and logs go with it), what\n" +
			"interrupted runs left (their box and runtime directories), then everything in the store that\n" +
			"no image and no box uses (as devbox image prune). --dry-run lists all of it with sizes and\n" +
			"removes nothing.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if o.JSON && !o.DryRun {
				return cmdutil.FlagErrorf("--json lists what would go: use it with --dry-run")
			}
			if runF != nil {
				return runF(&o)
			}
			return pruneRun(c.Context(), f, &o)
		},
	}
	c.Flags().BoolVarP(&o.Force, "force", "f", false, "remove the stopped boxes without asking")
	c.Flags().BoolVarP(&o.DryRun, "dry-run", "n", false, "list what would be removed (boxes, leftovers, unused image data), with sizes, and remove nothing")
	c.Flags().BoolVar(&o.JSON, "json", false, "with --dry-run: print a JSON array (schema in docs/json.md)")
	return c
}

func pruneRun(ctx context.Context, f *cmdutil.Factory, o *PruneOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	stopped, err := e.mgr.Stopped()
	if err != nil {
		return err
	}
	if o.DryRun {
		plan, err := e.mgr.PruneDryRun(stopped)
		if err != nil {
			return err
		}
		if err := cmdutil.PrintGarbage(f.IOStreams.Out, plan.Items, o.JSON); err != nil || o.JSON {
			return err
		}
		fmt.Fprintf(f.IOStreams.ErrOut, "Would delete %d box(es), %d run leftover(s) and %s\n", plan.Boxes, plan.Leftovers, strings.TrimPrefix(cmdutil.GCSummary(plan.GC, true), "Would delete "))
		return nil
	}
	if len(stopped) > 0 && !o.Force {
		return cmdutil.FlagErrorf("prune would remove %d stopped box(es): %s (hint: add --force to confirm, or --dry-run to see everything that would go)", len(stopped), names(stopped))
	}
	rep, err := e.mgr.Prune(stopped, func(name string) { fmt.Fprintln(f.IOStreams.Out, name) })
	if err != nil {
		return err
	}
	if len(rep.Items) > 0 {
		fmt.Fprintln(f.IOStreams.ErrOut, cmdutil.GCSummary(rep, false))
	}
	return nil
}

func names(rs []*rbox.Record) string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return strings.Join(n, ", ")
}

// NewCmdLaunch builds the hidden `devbox launch FILE [ARG...]`: the
// interpreter of a launcher `devbox export --bin` wrote (the kernel runs
// it on the launcher, without a shell). It is `devbox --store S exec BOX
// -- BIN ARG...` with S, BOX and BIN read from FILE.
func NewCmdLaunch(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:                "launch FILE [ARG...]",
		Short:              "Run an exported launcher (used by the launchers themselves)",
		Hidden:             true,
		DisableFlagParsing: true,
		Args:               cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			l, err := export.ReadLaunch(args[0])
			if err != nil {
				return err
			}
			if l.Store != "" {
				*f.StoreRoot = l.Store
			}
			o := ShellOptions{NoTTY: true, Args: append([]string{l.Bin}, args[1:]...)}
			o.Name = l.Box
			return shellRun(c.Context(), f, &o)
		},
	}
}
