package box

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/devbox-dev/devbox/cgroup"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/export"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/store"
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/runtime"
	"github.com/devbox-dev/devbox/runtime/agent"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/device"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// CreateOptions are the flags of `devbox create` (and of an implicit
// create by `devbox shell ALIAS`).
type CreateOptions struct {
	Name    string
	Image   string
	Home    string
	Desktop bool
	// Audio: with Desktop, a sandboxed box gets the audio servers too.
	Audio    bool
	Net      string
	Volumes  []string
	Env      []string
	Hostname string
	Grace    int
	Platform string
	// CapAdd and CapDrop change the bounding set of the box's commands.
	CapAdd, CapDrop []string
	// SecurityOpt are --security-opt values (runtime.ParseSecurity).
	SecurityOpt []string
	// Network: see addNetworkFlags.
	Publish        []string
	NoAutoPorts    bool
	NoHostLoopback bool
	HostLoopback   bool
	// Limits: see cmdutil.AddLimitFlags.
	Limits cgroup.Limits
	// Devices are --device paths (device.Resolve).
	Devices []string
	// NoProvision: no first-start provisioning (package provision).
	NoProvision bool
}

func addCreateFlags(c *cobra.Command, o *CreateOptions, withImage bool) {
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

// parseVolume parses SRC:DST[:ro|rw].
func parseVolume(s string) (rbox.Volume, error) {
	parts := strings.Split(s, ":")
	bad := func(why string) (rbox.Volume, error) {
		return rbox.Volume{}, fmt.Errorf("invalid --volume %q: %s (hint: use /host/path:/box/path, ./dir:/box/path or /host/path:/box/path:ro)", s, why)
	}
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want SRC:DST or SRC:DST:ro")
	}
	v := rbox.Volume{Source: parts[0], Target: parts[1]}
	// A relative source is relative to the current directory (./src,
	// ../data, .), as podman takes it.
	if src := v.Source; src == "." || src == ".." || strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
		abs, err := filepath.Abs(src)
		if err != nil {
			return bad(err.Error())
		}
		v.Source = abs
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.ReadOnly = true
		case "rw":
		default:
			return bad("the option must be ro or rw")
		}
	}
	if !filepath.IsAbs(v.Source) || !filepath.IsAbs(v.Target) {
		return bad("the box path must be absolute, and the host path absolute or relative to here (./dir)")
	}
	v.Source, v.Target = filepath.Clean(v.Source), filepath.Clean(v.Target)
	if v.Target == "/" {
		return bad("the box's / cannot be replaced")
	}
	if _, err := os.Stat(v.Source); err != nil {
		return bad("the host path does not exist")
	}
	// Resolved once: the box binds this directory, by identity, at every
	// start, whatever later appears at the path.
	src, dev, ino, err := rbox.Identify(v.Source)
	if err != nil {
		return bad(err.Error())
	}
	v.Source, v.Dev, v.Ino = src, dev, ino
	return v, nil
}

// create makes the record of a new box, pulling its image when needed.
func (e *env) create(o CreateOptions) (*rbox.Record, error) {
	if err := runtime.ValidateName(o.Name); err != nil {
		return nil, cmdutil.FlagErrorf("%v", err)
	}
	if o.Audio && (!o.Desktop || o.Home == "") {
		return nil, cmdutil.FlagErrorf("--audio goes with --home DIR --desktop (hint: a box with your own home has your audio already)")
	}
	if o.Hostname != "" {
		if err := rbox.CheckHostname(o.Hostname); err != nil {
			return nil, cmdutil.FlagErrorf("invalid --hostname: %v", err)
		}
	}
	netMode, err := e.createNetwork(o)
	if err != nil {
		return nil, err
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, cmdutil.FlagErrorf("%v", err)
	}
	if _, err := runtime.ParseSecurity(o.CapAdd, o.CapDrop, o.SecurityOpt, true); err != nil {
		return nil, cmdutil.FlagErrorf("%v", err)
	}
	// A limit that cannot be applied fails before anything is pulled.
	if _, err := cgroup.Decide(cgroup.DetectHost(), o.Limits); err != nil {
		return nil, err
	}
	var vols []rbox.Volume
	for _, s := range o.Volumes {
		v, err := parseVolume(s)
		if err != nil {
			return nil, cmdutil.FlagErrorf("%v", err)
		}
		vols = append(vols, v)
	}
	var devs []string
	for _, d := range o.Devices {
		p, err := device.Resolve(d)
		if err != nil {
			return nil, cmdutil.FlagErrorf("%v", err)
		}
		devs = append(devs, p)
	}
	var homeDev, homeIno uint64
	if o.Home != "" {
		abs, err := filepath.Abs(o.Home)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("creating the box home %s: %w", abs, err)
		}
		if o.Home, homeDev, homeIno, err = rbox.Identify(abs); err != nil {
			return nil, fmt.Errorf("the box home %s: %w", abs, err)
		}
	}
	ref := o.Image
	if ref == "" {
		// One rule for create and shell: without --image, the name
		// must be an alias.
		tab, err := e.f.Aliases()
		if err != nil {
			return nil, err
		}
		if _, isAlias := tab.Lookup(o.Name); !isAlias {
			return nil, notAliasError(tab, o.Name, "create")
		}
		ref = o.Name
	}
	img, cfg, err := e.image(ref, o.Platform)
	if err != nil {
		return nil, err
	}
	spec, err := runtime.NewSpec(cfg, runtime.CreateOptions{Cmd: []string{"sh"}, Env: o.Env, HostEnv: os.Environ()})
	if err != nil {
		return nil, cmdutil.FlagErrorf("%v", err)
	}
	chains := store.ChainIDs(cfg.RootFS.DiffIDs)
	r := &rbox.Record{
		ID: runtime.NewID(), Name: o.Name, Image: img.Ref, ImageID: img.ID, Created: time.Now().UTC(),
		Hostname: o.Hostname, Net: netMode, Home: o.Home, HomeDev: homeDev, HomeIno: homeIno, Desktop: o.Desktop, Audio: o.Audio, CapAdd: o.CapAdd, CapDrop: o.CapDrop, SecurityOpt: o.SecurityOpt, Volumes: vols, Env: spec.Env, Grace: o.Grace, Limits: o.Limits,
		Publish: o.Publish, NoAutoPorts: o.NoAutoPorts, Devices: devs, NoProvision: o.NoProvision,
		// A box with a home of its own is a sandbox: no host loopback
		// unless --host-loopback; the record keeps the decision.
		NoHostLoopback: cmdutil.RecordNoHostLoopback(cmdutil.NetworkFlags{HostLoopback: o.HostLoopback,
			NoHostLoopback: o.NoHostLoopback, Sandboxed: o.Home != "" && !cmdutil.IsOwnHome(o.Home)}),
	}
	if r.Hostname == "" {
		r.Hostname = o.Name
	}
	for i := len(chains) - 1; i >= 0; i-- {
		r.Lowers = append(r.Lowers, chains[i].Hex)
	}
	unlock, err := e.bs.Lock("boxes")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if existing, err := e.bs.Get(o.Name); err == nil {
		return existing, errExists
	} else if rbox.IsBroken(err) && !errors.Is(err, rbox.ErrNotFound) {
		return nil, err
	}
	if err := e.bs.Create(r); err != nil {
		return nil, err
	}
	return r, nil
}

var errExists = errors.New("box exists")

// notAliasError refuses NAME without --image when NAME is no alias, for
// create and shell alike.
func notAliasError(tab alias.Table, name, verb string) error {
	hint := "devbox " + verb + " " + name + " --image IMAGE, or use an alias (devbox aliases)"
	if c := tab.Closest(name); c != "" {
		hint = fmt.Sprintf("did you mean %q? devbox aliases lists the distro names", c)
	}
	what := "no box named %q and it is not an alias"
	if verb == "create" {
		what = "%q is not an alias, and no --image was given"
	}
	return cmdutil.FlagErrorf(what+" (hint: %s)", name, hint)
}

// image finds ref in the store, pulling it when missing.
func (e *env) image(ref, platform string) (store.Image, *v1.ConfigFile, error) {
	return e.imagePulled(ref, platform, "missing")
}

// imagePulled finds ref in the store, pulling it as policy says: when
// missing, always (first), or never.
func (e *env) imagePulled(ref, platform, policy string) (store.Image, *v1.ConfigFile, error) {
	tab, err := e.f.Aliases()
	if err != nil {
		return store.Image{}, nil, err
	}
	img, lerr := e.st.Lookup(ref)
	if policy == "always" {
		lerr = errors.New("pull always")
	}
	if lerr != nil {
		named, _, err := image.Resolve(ref, tab)
		if err != nil {
			return store.Image{}, nil, err
		}
		if policy != "always" {
			img, lerr = e.st.Lookup(image.FullName(named))
		}
		if local, ok := image.LookupLocal(e.st, ref); ok && lerr != nil {
			img, lerr = local, nil // committed or loaded as localhost/…
		}
		if lerr != nil && policy == "never" {
			return store.Image{}, nil, fmt.Errorf("image %s is not stored and --pull never was given (hint: devbox pull %s)", ref, ref)
		}
		if lerr != nil {
			var plat *v1.Platform
			if platform != "" {
				p, err := image.ParsePlatform(platform)
				if err != nil {
					return store.Image{}, nil, cmdutil.FlagErrorf("%v", err)
				}
				plat = &p
			}
			saved := e.f.IOStreams.Out
			e.f.IOStreams.Out = e.f.IOStreams.ErrOut
			_, err := cmdutil.PullImage(e.ctx, e.f, ref, plat, false)
			e.f.IOStreams.Out = saved
			if err != nil {
				return store.Image{}, nil, err
			}
			if img, err = e.st.Lookup(image.FullName(named)); err != nil {
				return store.Image{}, nil, err
			}
		}
	}
	h, err := v1.NewHash(img.ID)
	if err != nil {
		return store.Image{}, nil, err
	}
	m, err := e.st.Manifest(h)
	if err != nil {
		return store.Image{}, nil, err
	}
	cfg, err := e.st.ConfigFile(m.Config.Digest)
	return img, cfg, err
}

// NewCmdCreate builds `devbox create`.
func NewCmdCreate(f *cmdutil.Factory) *cobra.Command {
	o := CreateOptions{}
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
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			r, err := e.create(o)
			if errors.Is(err, errExists) {
				return fmt.Errorf("a box named %q already exists (hint: devbox shell %s enters it; devbox rm %s removes it)", o.Name, o.Name, o.Name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(f.IOStreams.Out, r.Name)
			return nil
		},
	}
	addCreateFlags(c, &o, true)
	return c
}

// ShellOptions are the flags of `devbox shell`.
type ShellOptions struct {
	CreateOptions
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
	// changed are the create flags given: refused for an existing box
	// that differs (checkExisting).
	changed []string
	given   map[string][]string
}

// NewCmdShell builds `devbox shell`, the main job.
func NewCmdShell(f *cmdutil.Factory) *cobra.Command {
	o := ShellOptions{}
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
				return devcontainerShell(c, f, &o, args)
			}
			o.Name = args[0]
			// Flags after NAME (before "--") are devbox's.
			cmdArgs, err := cmdutil.ParseAfterName(c, args[1:])
			if err != nil {
				return err
			}
			o.changed, o.given = changedCreateFlags(c)
			return shellRun(c.Context(), f, &o, cmdArgs, true)
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

// devcontainerShell is devbox shell --devcontainer: the project's box is
// assembled (created, or rebuilt when its devcontainer.json changed), then
// entered; args are the command.
func devcontainerShell(c *cobra.Command, f *cmdutil.Factory, o *ShellOptions, args []string) error {
	if ch, _ := changedCreateFlags(c); len(ch) > 0 {
		return cmdutil.FlagErrorf("--devcontainer takes the box's settings from devcontainer.json, not from --%s", ch[0])
	}
	e, err := open(c.Context(), f)
	if err != nil {
		return err
	}
	name, err := devcontainerBox(e, o.Devcontainer, o.Trust)
	if err != nil {
		return err
	}
	o.Name = name
	return shellRun(c.Context(), f, o, args, false)
}

// NewCmdExec builds `devbox exec`: like shell, for scripts (no implicit
// create). As with shell, a terminal is allocated when stdin and stdout
// are terminals; -i and -t are accepted with docker's meaning.
func NewCmdExec(f *cmdutil.Factory) *cobra.Command {
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
			cmdArgs, err := cmdutil.ParseAfterName(c, args[1:])
			if err != nil {
				return err
			}
			if len(cmdArgs) == 0 {
				return cmdutil.FlagErrorf("exec needs a command (hint: devbox exec %s -- COMMAND, or devbox shell %s for a shell)", o.Name, o.Name)
			}
			if o.TTY && o.NoTTY {
				return cmdutil.FlagErrorf("-t and -T contradict each other")
			}
			return shellRun(c.Context(), f, &o, cmdArgs, false)
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().BoolVar(&o.Root, "root", false, "run as root of the box")
	c.Flags().BoolVarP(&o.TTY, "tty", "t", false, "allocate a terminal even when stdin is not one")
	c.Flags().BoolVarP(&o.NoTTY, "no-tty", "T", false, "never allocate a terminal")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "pass stdin on (always done; accepted for docker's -i)")
	return c
}

func shellRun(ctx context.Context, f *cmdutil.Factory, o *ShellOptions, args []string, mayCreate bool) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	r, err := e.bs.Get(o.Name)
	if errors.Is(err, rbox.ErrNotFound) && mayCreate {
		tab, terr := f.Aliases()
		if terr != nil {
			return terr
		}
		if _, isAlias := tab.Lookup(o.Name); !isAlias && o.Image == "" {
			if rbox.IsBroken(err) {
				return err // names the record that cannot be read
			}
			return notAliasError(tab, o.Name, "shell")
		}
		r, err = e.create(o.CreateOptions)
		if errors.Is(err, errExists) {
			err = nil // created by a concurrent devbox shell
		}
	} else if err == nil && len(o.changed) > 0 {
		err = e.checkExisting(r, o.CreateOptions, o.changed, o.given)
	}
	if err != nil {
		return err
	}
	want, err := e.wantsProvision(r, o.Reprovision)
	if err != nil {
		return err
	}
	if want {
		if err := e.ensureRunning(r); err != nil {
			return err
		}
		if r, err = e.provision(r, o.Reprovision); err != nil {
			return err
		}
	}
	ios := f.IOStreams
	terminal := (ios.InTTY && ios.OutTTY && !o.NoTTY) || o.TTY
	so := sessionOpts{Args: args, Root: o.Root, Terminal: terminal}
	// Warm path first: a running box answers at once. Only when nobody
	// serves the socket is the box started (under its lock).
	code, err := e.session(r, so)
	if errors.Is(err, errNotRunning) {
		if err = e.ensureRunning(r); err == nil {
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

// Listing is one line of `devbox ls` and the body of `devbox inspect`.
type Listing struct {
	*rbox.Record
	State rbox.State `json:"state"`
	Dir   string     `json:"dir"`
	// Status is "running", "stopped" or "broken" (a record that cannot
	// be used; Problem says why, with the file and a hint).
	Status  string `json:"status"`
	Problem string `json:"problem,omitempty"`
	// Security says how the box's commands are confined (capabilities,
	// seccomp, no_new_privs; docs/security.md).
	Security string `json:"security,omitempty"`
	// Network is the running box's user-mode network: driver and
	// forwarded ports.
	Network *nethost.State `json:"network,omitempty"`
	// NoProvision and Provision come from the box's provision.json.
	NoProvision bool             `json:"noProvision,omitempty"`
	Provision   *provision.State `json:"provision,omitempty"`
	// Run is set while the box is a devbox run in progress: an ephemeral
	// one (ls --all; no record, its name is empty) or a kept one (--name,
	// --keep) whose command still runs. RunPID is that devbox's pid.
	Run    bool `json:"run,omitempty"`
	RunPID int  `json:"runPid,omitempty"`
}

func (e *env) listing(r *rbox.Record) Listing {
	l := Listing{Record: r, Dir: e.bs.BoxDir(r.ID), Status: "stopped", NoProvision: r.NoProvision, Provision: r.Provision}
	rep, err := agent.Call(e.bs.SocketPath(r.ID), agent.Request{Type: agent.TypeStatus}, 2*time.Second)
	if err == nil {
		l.Status = "running"
		l.State = rbox.State{Running: true, Sessions: rep.Sessions, InitPID: e.bs.InitPID(r.ID), Socket: e.bs.SocketPath(r.ID)}
		if r.Problem == nil {
			l.Network = e.networkState(r)
		}
	} else if run, ok := e.liveRun(r.ID); ok {
		// A kept run whose command still runs.
		l.Status, l.Run, l.RunPID = "running", true, run.PID
		l.State = rbox.State{Running: true}
		l.Network = e.networkState(r)
	}
	if r.Problem != nil {
		l.Status, l.Problem = "broken", r.Problem.Error()
	} else if sec, err := r.Security(e.userHome()); err == nil {
		l.Security = sec.Describe()
	}
	return l
}

// liveRun returns the devbox run in progress of box id, if there is one.
func (e *env) liveRun(id string) (store.LiveRun, bool) {
	if !e.st.HasRunLock(id) {
		return store.LiveRun{}, false // the common case: one lstat
	}
	for _, r := range e.st.LiveRuns() {
		if r.ID == id {
			return r, true
		}
	}
	return store.LiveRun{}, false
}

// ephemeralRuns lists the devbox runs in progress that are not boxes
// (no --name, no --keep).
func (e *env) ephemeralRuns(boxes []*rbox.Record) []Listing {
	known := map[string]bool{}
	for _, r := range boxes {
		known[r.ID] = true
	}
	var out []Listing
	for _, run := range e.st.LiveRuns() {
		if known[run.ID] {
			continue
		}
		if _, err := os.Lstat(filepath.Join(e.bs.BoxDir(run.ID), "box.json")); err == nil {
			continue // a kept run's record, written after List
		}
		r := &rbox.Record{ID: run.ID, Image: cmdutil.Printable(run.Image)}
		l := Listing{Record: r, Dir: e.bs.BoxDir(run.ID), Status: "running", Run: true, RunPID: run.PID,
			State: rbox.State{Running: true}}
		l.Network = e.networkState(r)
		out = append(out, l)
	}
	return out
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

// NewCmdLs builds `devbox ls`.
func NewCmdLs(f *cmdutil.Factory) *cobra.Command {
	var asJSON, all bool
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
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			recs, err := e.bs.List()
			if err != nil {
				return err
			}
			out := []Listing{}
			for _, r := range recs {
				out = append(out, e.listing(r))
			}
			if all || c.CalledAs() == "ps" {
				out = append(out, e.ephemeralRuns(recs)...)
			}
			if asJSON {
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
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array (schema in docs/json.md)")
	c.Flags().BoolVarP(&all, "all", "a", false, "also list the ephemeral boxes of devbox run commands in progress")
	return c
}

// NewCmdInspect builds `devbox inspect`.
func NewCmdInspect(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Print a box's record and state as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			var out []Listing
			for _, n := range args {
				r, err := e.bs.Find(n)
				if err != nil {
					return err
				}
				out = append(out, e.listing(r))
			}
			enc := json.NewEncoder(f.IOStreams.Out)
			enc.SetIndent("", "  ")
			if len(out) == 1 {
				return enc.Encode(out[0])
			}
			return enc.Encode(out)
		},
	}
}

// NewCmdStop builds `devbox stop`.
func NewCmdStop(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use: "stop NAME...",
		Long: "Stop boxes and wait until they are down: their sessions get SIGTERM, then SIGKILL\n" +
			"after 3 s, and each is told why it ended. A devbox run in progress (devbox ps\n" +
			"lists them; an ephemeral one by its id) is stopped the same way: its command gets\n" +
			"SIGTERM, then SIGKILL.",
		Short: "Stop boxes and wait until they are down (sessions get SIGTERM, then SIGKILL after 3 s)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			for _, n := range args {
				r, err := e.bs.Find(n)
				if err != nil {
					// An ephemeral run, by the id devbox ps shows.
					if run, ok := e.findRun(n); ok {
						if err := e.stopRun(run); err != nil {
							return err
						}
						fmt.Fprintln(f.IOStreams.Out, n)
						continue
					}
					return err
				}
				if run, ok := e.liveRun(r.ID); ok {
					err = e.stopRun(run) // a kept run whose command still runs
				} else {
					err = e.stop(r, 10*time.Second, "devbox stop")
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(f.IOStreams.Out, r.Name)
			}
			return nil
		},
	}
}

// NewCmdRm builds `devbox rm`.
func NewCmdRm(f *cmdutil.Factory) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm [-f] NAME...",
		Short: "Remove boxes (your home and volumes are never touched)",
		Long: "Remove boxes: their record and what was installed in them; your home and volumes\n" +
			"are never touched. A running box without sessions (one waiting out its grace\n" +
			"period) is stopped first; one with sessions needs -f, which ends them.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			var failed error
			for _, n := range args {
				r, err := e.bs.Find(n)
				if err == nil {
					err = e.remove(r, force)
				}
				if err != nil {
					fmt.Fprintf(f.IOStreams.ErrOut, "devbox: %v\n", err)
					failed = cmdutil.SilentError
					continue
				}
				fmt.Fprintln(f.IOStreams.Out, r.Name)
			}
			return failed
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "stop a running box first")
	return c
}

// remove deletes box r's record and writable layer. Its mounts (home,
// volumes) exist only in the box's own mount namespace, which is gone once
// the box is stopped, and removal runs in a fresh namespace that never
// saw them: nothing outside the box directory can be reached.
func (e *env) remove(r *rbox.Record, force bool) error {
	unlock, err := e.bs.Lock("box-" + r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if run, ok := e.liveRun(r.ID); ok {
		if !force {
			return fmt.Errorf("box %s is a devbox run in progress (hint: wait for its command to end, or devbox rm -f %s stops it)", r.Name, r.Name)
		}
		if err := e.stopRun(run); err != nil {
			return err
		}
	}
	if e.bs.Running(r.ID) {
		// A box that only waits out its grace period (no session) is
		// stopped: scripts remove a box right after using it.
		if !force {
			rep, err := agent.Call(e.bs.SocketPath(r.ID), agent.Request{Type: agent.TypeStatus}, 2*time.Second)
			if err == nil && rep.Sessions > 0 {
				return fmt.Errorf("box %s is running with %d session(s) (hint: leave them, or devbox rm -f %s ends them)", r.Name, rep.Sessions, r.Name)
			}
		}
		if err := e.stop(r, 10*time.Second, "devbox rm"); err != nil {
			return err
		}
	}
	dir := e.bs.BoxDir(r.ID)
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		// A symlink (or a file) in place of the box directory: only the
		// entry goes, nothing it points to.
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("removing box %s: %w", r.Name, err)
		}
		return nil
	}
	e.removeCgroup(r)
	e.unexportAll(r)
	// The record goes first: a half-removed box is no longer listed.
	if err := os.Remove(filepath.Join(dir, "box.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing box %s: %w", r.Name, err)
	}
	if err := e.f.Remover(e.ctx, e.st)([]string{dir}); err != nil {
		return fmt.Errorf("removing box %s: %w", r.Name, err)
	}
	_ = os.RemoveAll(e.bs.RunDir(r.ID))
	e.sweepSnapshots(r)
	return nil
}

// sweepSnapshots removes the snapshot layers (frozen writable layers) of
// removed box r that no other box stacks (a clone keeps them), when no
// pull or collection runs; otherwise they are garbage for devbox prune.
func (e *env) sweepSnapshots(r *rbox.Record) {
	var layers []v1.Hash
	for _, l := range slices.Concat(r.Lowers, snapshotLowers(r)) {
		if e.st.SnapshotLayer(l) {
			layers = append(layers, v1.Hash{Algorithm: "sha256", Hex: l})
		}
	}
	if len(layers) == 0 {
		return
	}
	c := &store.Created{}
	c.ExpectLayers(layers)
	if _, err := e.st.Abandon(c, e.f.Remover(e.ctx, e.st)); err != nil {
		fmt.Fprintf(e.f.IOStreams.ErrOut, "devbox: warning: box %s: its snapshot layers stay until devbox prune: %v\n", r.Name, err)
	}
}

func snapshotLowers(r *rbox.Record) []string {
	var out []string
	for _, s := range r.Snapshots {
		out = append(out, s.Lowers...)
	}
	return out
}

// unexportAll removes what devbox export put on the host for box r; what
// it cannot remove is named in a warning.
func (e *env) unexportAll(r *rbox.Record) {
	b, err := export.ForRecord(r, e.bs.BoxDir(r.ID), e.st.Root, e.st.LayersDir())
	if err == nil {
		_, err = b.Unexport("", "")
	}
	if err != nil {
		fmt.Fprintf(e.f.IOStreams.ErrOut, "devbox: warning: box %s: %v\n", r.Name, err)
	}
}

// NewCmdPrune builds `devbox prune`.
func NewCmdPrune(f *cmdutil.Factory) *cobra.Command {
	var force, dryRun, asJSON bool
	c := &cobra.Command{
		Use:   "prune",
		Short: "Remove every stopped box, leftovers of interrupted runs, and image data nothing uses",
		Long: "Remove every stopped box (with --force; its runtime directory and logs go with it), what\n" +
			"interrupted runs left (their box and runtime directories), then everything in the store that\n" +
			"no image and no box uses (as devbox image prune). --dry-run lists all of it with sizes and\n" +
			"removes nothing.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if asJSON && !dryRun {
				return cmdutil.FlagErrorf("--json lists what would go: use it with --dry-run")
			}
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			recs, err := e.bs.List()
			if err != nil {
				return err
			}
			var stopped []*rbox.Record
			for _, r := range recs {
				if _, live := e.liveRun(r.ID); !e.bs.Running(r.ID) && !live {
					stopped = append(stopped, r)
				}
			}
			if dryRun {
				return e.pruneDryRun(stopped, asJSON)
			}
			if len(stopped) > 0 && !force {
				return cmdutil.FlagErrorf("prune would remove %d stopped box(es): %s (hint: add --force to confirm, or --dry-run to see everything that would go)", len(stopped), names(stopped))
			}
			for _, r := range stopped {
				if err := e.remove(r, false); err != nil {
					return err
				}
				fmt.Fprintln(f.IOStreams.Out, r.Name)
			}
			if err := e.pruneLeftovers(); err != nil {
				return err
			}
			rep, err := e.st.GC(store.GCOptions{Remove: e.f.Remover(e.ctx, e.st)})
			if err != nil {
				return err
			}
			if len(rep.Items) > 0 {
				fmt.Fprintln(f.IOStreams.ErrOut, cmdutil.GCSummary(rep, false))
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove the stopped boxes without asking")
	c.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "list what would be removed (boxes, leftovers, unused image data), with sizes, and remove nothing")
	c.Flags().BoolVar(&asJSON, "json", false, "with --dry-run: print a JSON array (schema in docs/json.md)")
	return c
}

// pruneDryRun lists what prune would remove: the stopped boxes, run
// leftovers, stale runtime files, and the image data nothing would use
// once those boxes are gone.
func (e *env) pruneDryRun(stopped []*rbox.Record, asJSON bool) error {
	var items []store.Garbage
	gone := map[string]bool{}
	for _, r := range stopped {
		gone[r.ID] = true
		dir := e.bs.BoxDir(r.ID)
		items = append(items, store.Garbage{Kind: store.KindBox, Name: r.Name, Path: dir, Size: store.DiskUsage(dir)})
	}
	dirs, runDirs, release := e.leftovers()
	release()
	for _, d := range dirs {
		gone[filepath.Base(d)] = true
		items = append(items, store.Garbage{Kind: store.KindRun, Name: filepath.Base(d), Path: d, Size: store.DiskUsage(d)})
	}
	for _, d := range runDirs {
		items = append(items, store.Garbage{Kind: store.KindRuntime, Name: filepath.Base(d), Path: d, Size: store.DiskUsage(d)})
	}
	rep, err := e.st.GC(store.GCOptions{DryRun: true, IgnoreBoxes: gone})
	if err != nil {
		return err
	}
	items = append(items, rep.Items...)
	if err := cmdutil.PrintGarbage(e.f.IOStreams.Out, items, asJSON); err != nil || asJSON {
		return err
	}
	fmt.Fprintf(e.f.IOStreams.ErrOut, "Would delete %d box(es), %d run leftover(s) and %s\n", len(stopped), len(dirs), strings.TrimPrefix(cmdutil.GCSummary(rep, true), "Would delete "))
	return nil
}

func names(rs []*rbox.Record) string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return strings.Join(n, ", ")
}

// leftovers finds what runs left behind: for every run whose lock is free
// (its devbox is gone: finished, or killed at any moment), its box
// directory and its runtime directory; then box directories without a
// record and without a run lock (a devbox older than run locks) that are
// older than a minute and do not answer as a box. A live run's lock is
// held, so nothing of it is found. The stale runs stay locked until
// release.
func (e *env) leftovers() (dirs, runDirs []string, release func()) {
	stale := e.st.StaleRuns()
	release = func() {
		for _, r := range stale {
			r.Done()
		}
	}
	gone := map[string]bool{}
	for _, r := range stale {
		gone[r.ID] = true
		dir := e.bs.BoxDir(r.ID)
		if _, err := os.Lstat(filepath.Join(dir, "box.json")); err == nil {
			continue // never: run ids are not box ids
		}
		if _, err := os.Lstat(dir); err == nil {
			dirs = append(dirs, dir)
		}
		if _, err := os.Lstat(e.bs.RunDir(r.ID)); err == nil {
			runDirs = append(runDirs, e.bs.RunDir(r.ID))
		}
	}
	ents, _ := os.ReadDir(e.bs.Dir)
	for _, ent := range ents {
		id := ent.Name()
		dir := filepath.Join(e.bs.Dir, id)
		if gone[id] || e.st.HasRunLock(id) || !ent.IsDir() {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, "box.json")); err == nil {
			continue
		}
		if e.bs.Running(id) {
			continue
		}
		if fi, err := ent.Info(); err == nil && time.Since(fi.ModTime()) < time.Minute {
			continue // possibly a run that is starting right now
		}
		dirs = append(dirs, dir)
	}
	return dirs, runDirs, release
}

// pruneLeftovers removes what leftovers finds.
func (e *env) pruneLeftovers() error {
	dirs, runDirs, release := e.leftovers()
	defer release()
	for _, d := range runDirs {
		// The runtime directory holds the user's files only (the network
		// helper's log and sockets); RemoveAll does not follow symlinks.
		_ = os.RemoveAll(d)
	}
	if len(dirs) == 0 {
		return nil
	}
	return e.f.Remover(e.ctx, e.st)(dirs)
}

// userHome is the caller's home directory, "" when unknown.
func (e *env) userHome() string {
	h, _ := os.UserHomeDir()
	return h
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
			o := ShellOptions{NoTTY: true}
			o.Name = l.Box
			return shellRun(c.Context(), f, &o, append([]string{l.Bin}, args[1:]...), false)
		},
	}
}
