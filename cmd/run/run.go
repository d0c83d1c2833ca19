// Package run implements `devbox run`: an ephemeral box for one command.
package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/device"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// Options are the parsed flags of `devbox run`.
type Options struct {
	Image    string
	Cmd      []string
	Name     string
	Keep     bool
	Env      []string
	Workdir  string
	User     string
	Hostname string
	Net      string
	Publish  []string
	// HostLoopback lets the box reach the host's loopback (off by
	// default); NoHostLoopback says so explicitly.
	HostLoopback, NoHostLoopback bool
	Pull                         string
	Platform                     string
	TTY                          bool
	NoTTY                        bool
	// Interactive is docker's -i: stdin is always passed on, so it only
	// makes -it work.
	Interactive bool
	Limits      cgroup.Limits
	// CapAdd, CapDrop and SecurityOpt change the box's confinement
	// (runtime.ParseSecurity).
	CapAdd, CapDrop, SecurityOpt []string
	// Devices are --device paths (device.Resolve).
	Devices []string
}

// NewCmdRun builds the command.
func NewCmdRun(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [--] [COMMAND [ARG...]]",
		Short: "Run a command in a new, ephemeral box (removed when it exits)",
		Long: "Run a command in a new box made from IMAGE, in its own user, mount, PID, UTS,\n" +
			"IPC and network namespaces: docker run --rm. The command's exit code is devbox's.\n\n" +
			"It is a sandbox: the command runs as the image's user, in the image's working\n" +
			"directory (or -w), without your home or current directory; nothing of the host\n" +
			"is reachable. To build your project with the box's tools, use a dev box, which\n" +
			"sees your home and starts in the current directory: devbox shell NAME -- make.\n\n" +
			"Flags go before IMAGE; everything after IMAGE (after --) is the command's. stdin is\n" +
			"always passed on (-i is accepted, so docker's -it works); a terminal is allocated\n" +
			"when stdin and stdout are terminals, or with -t.\n\n" +
			"The box is removed when the command exits, unless --name or --keep is given: then\n" +
			"it is kept as a box (sandboxed, with an empty home of its own) that devbox ls lists\n" +
			"and devbox shell, exec, rm and prune reach; a name in use is refused.",
		Example: "  devbox run debian -- cat /etc/os-release\n  echo hi | devbox run busybox -- cat\n  devbox run -e FOO=bar -w /tmp alpine -- sh -c 'echo $FOO; pwd'",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Image, opts.Cmd = args[0], args[1:]
			if len(opts.Cmd) > 0 && opts.Cmd[0] == "--" {
				opts.Cmd = opts.Cmd[1:]
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // everything after IMAGE belongs to the command
	fl.StringVar(&opts.Name, "name", "", "name the box and keep it after the command exits")
	fl.BoolVar(&opts.Keep, "keep", false, "keep the box after the command exits")
	fl.StringArrayVarP(&opts.Env, "env", "e", nil, "set KEY=VALUE in the box (KEY alone copies the host's value)")
	fl.StringVarP(&opts.Workdir, "workdir", "w", "", "working directory inside the box")
	fl.StringVarP(&opts.User, "user", "u", "", "user[:group] to run as (name or number)")
	fl.StringVar(&opts.Hostname, "hostname", "", "the box's hostname (default: its name, or devbox)")
	fl.StringVar(&opts.Net, "net", "", "network: slirp (private, user-mode), none (only lo) or host; or a driver: gvisor, pasta, slirp4netns (default "+box.DefaultNet+")")
	fl.StringArrayVarP(&opts.Publish, "publish", "p", nil, "publish a box port on the host: [HOST_IP:]HOST_PORT:BOX_PORT[/tcp|/udp] (HOST_IP defaults to 127.0.0.1, which every local user can reach; a taken host port is an error)")
	fl.BoolVar(&opts.HostLoopback, "host-loopback", false, cmdutil.HostLoopbackHelp)
	fl.BoolVar(&opts.NoHostLoopback, "no-host-loopback", false, cmdutil.NoHostLoopbackHelp)
	fl.StringVar(&opts.Pull, "pull", "missing", "pull the image: missing, always or never")
	fl.StringVar(&opts.Platform, "platform", "", "image platform when pulling (os/arch[/variant])")
	fl.BoolVarP(&opts.TTY, "tty", "t", false, "allocate a terminal even when stdin is not one")
	fl.BoolVarP(&opts.NoTTY, "no-tty", "T", false, "never allocate a terminal")
	fl.BoolVarP(&opts.Interactive, "interactive", "i", false, "pass stdin on (always done; accepted for docker's -i, so -it works)")
	cmdutil.AddLimitFlags(fl, &opts.Limits)
	fl.StringArrayVar(&opts.CapAdd, "cap-add", nil, "add a capability to the box's default set (e.g. NET_RAW, SYS_PTRACE, ALL)")
	fl.StringArrayVar(&opts.CapDrop, "cap-drop", nil, "drop a capability from the box's default set (e.g. CHOWN, ALL)")
	fl.StringArrayVar(&opts.Devices, "device", nil, "bind a host device into the box: a character or block device you can open (/dev/kvm, /dev/ttyUSB0, /dev/video0) or /dev/dri, /dev/bus/usb")
	fl.StringArrayVar(&opts.SecurityOpt, "security-opt", nil, "seccomp=unconfined (no syscall filter) or no-new-privileges=false (setuid programs work)")
	_ = cmd.RegisterFlagCompletionFunc("net", cobra.FixedCompletions(network.Modes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("pull", cobra.FixedCompletions([]string{"missing", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Run creates the box, runs the command and passes its exit code through.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	trace.Mark("run: start")
	if opts.Name != "" {
		if err := runtime.ValidateName(opts.Name); err != nil {
			return cmdutil.FlagErrorf("%v", err)
		}
	}
	switch opts.Pull {
	case "missing", "always", "never":
	default:
		return cmdutil.FlagErrorf("invalid --pull %q (hint: use missing, always or never)", opts.Pull)
	}
	if err := opts.Limits.Validate(); err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	sec, err := runtime.ParseSecurity(opts.CapAdd, opts.CapDrop, opts.SecurityOpt, false)
	if err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	for i, d := range opts.Devices {
		if opts.Devices[i], err = device.Resolve(d); err != nil {
			return cmdutil.FlagErrorf("%v", err)
		}
	}
	// A limit that cannot be applied fails before anything is pulled.
	cgHost := cgroup.DetectHost()
	if _, err := cgroup.Decide(cgHost, opts.Limits); err != nil {
		return err
	}
	trace.Mark("run: flags checked")
	ios := f.IOStreams
	terminal := (ios.InTTY && ios.OutTTY && !opts.NoTTY) || opts.TTY
	nw, err := chooseNetwork(f, opts)
	if err != nil {
		return err
	}
	mapping, err := f.Mapping()
	if err != nil {
		return err
	}
	st, err := f.Store()
	if err != nil {
		return err
	}
	id := runtime.NewID()
	// A kept run is a box: its name must be free.
	keep := opts.Keep || opts.Name != ""
	var boxes *rbox.Store
	if keep {
		if boxes, err = box.OpenStore(st); err != nil {
			return err
		}
		if err := box.CheckName(boxes, box.KeptName(opts.Name, id)); err != nil {
			return err
		}
	}
	// Held until devbox ends (or dies): devbox prune removes this run's
	// box and runtime directories only once it is free.
	releaseRun, err := st.RunLock(id, store.RunInfo{PID: os.Getpid(), Image: opts.Image, Name: box.RunName(opts.Keep, opts.Name, id)})
	if err != nil {
		return err
	}
	defer releaseRun()
	// Where this process started (Setup may move it): a warm holder's
	// spare, started from here, can join the box's cgroup only when a move
	// from there is allowed.
	var from string
	if cgHost.Mode == cgroup.Unified {
		from, _ = cgHost.Self()
	}
	cg, cgFile, err := box.SetupCgroup(ctx, cgHost, id, opts.Limits)
	if err != nil {
		return err
	}
	joinable := cg == nil || from != "" && cgroup.MayMove(cgHost.Root, from, cg.Path, os.Getuid())
	if cg != nil {
		defer cg.Remove() // when anything below fails; a no-op once removed
	}
	// Everything the init needs to start is known from the flags: start it
	// now, and resolve the image meanwhile: the start mostly waits (for
	// the clone, for newuidmap and newgidmap), and the init waits for its
	// spec on a pipe.
	type prepared struct {
		spec *runtime.Spec
		img  store.Image
		err  error
	}
	pc := make(chan prepared, 1)
	go func() {
		spec, img, err := prepare(ctx, f, st, opts, id, terminal, nw)
		if spec != nil {
			spec.Security = sec
			// A sandbox on the host's network: not its abstract sockets.
			spec.Security.ScopeAbstract = spec.Net == "host"
		}
		pc <- prepared{spec, img, err}
	}()
	// A spare lives in its holder's session: not for a run on a terminal.
	warmOK := joinable && !terminal && !ios.InTTY && !ios.OutTTY
	l, err := box.Launch(id, filepath.Join(st.ContainersDir(), id), terminal, nw, mapping, cgFile, warmOK)
	// Last (deferred first): a run that ends before finish leaves no
	// runtime directory behind.
	defer nw.Abandon()
	if err != nil {
		<-pc
		return err
	}
	defer l.Abandon()
	pr := <-pc
	if pr.err != nil {
		return pr.err
	}
	spec := pr.spec
	if err := os.MkdirAll(spec.ContainerDir, 0o700); err != nil {
		return fmt.Errorf("creating box directory: %w", err)
	}
	// The record first: image prune keeps the layers a spec.json names.
	if err := runtime.WriteSpec(filepath.Join(spec.ContainerDir, "spec.json"), spec); err != nil {
		return fmt.Errorf("writing box spec: %w", err)
	}
	if cg != nil {
		if err := cgroup.WriteRecord(spec.ContainerDir, cg.Path); err != nil {
			return err
		}
	}
	if keep {
		conf, err := f.Config()
		if err != nil {
			return err
		}
		if err := box.KeepAsBox(boxes, network.Config(conf.Network), box.KeptName(opts.Name, id), keepOptions(opts), spec, pr.img); err != nil {
			return err
		}
		if opts.Name == "" {
			name := box.KeptName(opts.Name, id)
			defer fmt.Fprintf(ios.ErrOut, "devbox: kept as box %s (devbox shell %s enters it; devbox rm %s removes it)\n", name, name, name)
		}
	}
	trace.Mark("run: spec written")
	// Replayable: what devbox prints and does beyond the init's work is
	// nothing but passing on the exit code (a single-id mapping warns on
	// every run).
	// A box cgroup without limits in a delegated base (not a scope of its
	// own) is a mkdir a replay can repeat.
	cgBase := ""
	if cg != nil && cg.Kind != cgroup.Scope && !opts.Limits.Any() && joinable {
		cgBase = filepath.Join(cg.Root, path.Dir(cg.Path))
	}
	replayable := !terminal && opts.Pull != "always" && spec.Remove && spec.ScratchInMemory && (cg == nil || cgBase != "") && !mapping.Single()
	code, err := l.Run(spec, ios.InTTY && terminal)
	if replayable && err == nil && code != cmdutil.ExitFailure {
		l.SaveReplay(spec, st, nw, cgBase, config.Path())
	}
	if nerr := nw.Finish(code == cmdutil.ExitFailure || code < 0); nerr != nil && err == nil {
		err = nerr
	}
	oom, cgErr := box.FinishCgroup(cg, cgFile, spec.ContainerDir, opts.Limits)
	if oom != nil {
		fmt.Fprintf(ios.ErrOut, "devbox: %s\n", oom.Msg)
		code = cmdutil.ExitOOM
	}
	if cgErr != nil {
		fmt.Fprintf(ios.ErrOut, "devbox: warning: %v\n", strings.TrimPrefix(cgErr.Error(), "devbox: "))
	}
	trace.Mark("run: exit code received")
	if spec.Remove {
		cleanup(ctx, f, st, spec.ContainerDir)
	}
	trace.Mark("run: done")
	if err != nil {
		return err
	}
	if code != 0 {
		return &cmdutil.ExitError{Code: code}
	}
	return nil
}

// chooseNetwork resolves the network flags on this host. Every box of
// devbox run is a sandbox: no host loopback unless --host-loopback.
func chooseNetwork(f *cmdutil.Factory, opts *Options) (*box.Network, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	n, err := box.ChooseNetwork(network.Config(cfg.Network), opts.Net, box.NetworkFlags{Publish: opts.Publish,
		HostLoopback: opts.HostLoopback, NoHostLoopback: opts.NoHostLoopback, Sandboxed: true, NoAutoPorts: true})
	if err != nil {
		return nil, err
	}
	// Known now: the helper starts while the spec is being made.
	n.Choice.Hostname = runtime.Hostname(opts.Hostname, opts.Name)
	return n, nil
}

// keepOptions is what a kept run's box keeps of opts.
func keepOptions(opts *Options) box.KeepOptions {
	return box.KeepOptions{Name: opts.Name, Net: opts.Net, CapAdd: opts.CapAdd, CapDrop: opts.CapDrop,
		SecurityOpt: opts.SecurityOpt, Limits: opts.Limits, Publish: opts.Publish, HostLoopback: opts.HostLoopback}
}

// prepare resolves the image (pulling it when needed) and builds the spec
// of box id.
func prepare(ctx context.Context, f *cmdutil.Factory, st *store.Store, opts *Options, id string, terminal bool, nw *box.Network) (*runtime.Spec, store.Image, error) {
	img, err := ensureImage(ctx, f, st, opts)
	if err != nil {
		return nil, img, err
	}
	spec, err := prepareSpec(f, st, opts, id, terminal, nw, img)
	return spec, img, err
}

func prepareSpec(f *cmdutil.Factory, st *store.Store, opts *Options, id string, terminal bool, nw *box.Network, img store.Image) (*runtime.Spec, error) {
	digest, err := v1.NewHash(img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Ref, err)
	}
	m, err := st.Manifest(digest)
	if err != nil {
		return nil, err
	}
	cfg, err := st.ConfigFile(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	spec, err := runtime.NewSpec(cfg, runtime.CreateOptions{
		Name: opts.Name, Cmd: opts.Cmd, Env: opts.Env, HostEnv: os.Environ(), Workdir: opts.Workdir,
		User: opts.User, Hostname: opts.Hostname, Net: nw.Choice.Driver, Terminal: terminal,
		Remove: !opts.Keep && opts.Name == "", ResolvConf: string(resolv), Devices: opts.Devices,
	})
	if err != nil {
		return nil, cmdutil.FlagErrorf("%v", err)
	}
	nw.Apply(spec, string(resolv), 3) // the only extra file of devbox run
	if spec.Remove {
		conf, err := f.Config()
		if err != nil {
			return nil, err
		}
		spec.ScratchInMemory = conf.Run.ScratchInMemory()
		spec.ScratchBytes = opts.Limits.Memory
	}
	spec.ID = id
	chains := store.ChainIDs(cfg.RootFS.DiffIDs)
	for i := len(chains) - 1; i >= 0; i-- {
		if !st.HasLayer(chains[i]) {
			return nil, fmt.Errorf("layer %d of %s is not unpacked (hint: devbox pull %s)", i+1, img.Ref, img.Ref)
		}
		spec.Lowers = append(spec.Lowers, st.LayerDir(chains[i]))
	}
	spec.ContainerDir = filepath.Join(st.ContainersDir(), spec.ID)
	return spec, nil
}

func ensureImage(ctx context.Context, f *cmdutil.Factory, st *store.Store, opts *Options) (store.Image, error) {
	tab, err := f.Aliases()
	if err != nil {
		return store.Image{}, err
	}
	named, _, err := image.Resolve(opts.Image, tab)
	if err != nil {
		if img, lerr := st.Lookup(opts.Image); lerr == nil {
			return img, nil
		}
		return store.Image{}, err
	}
	ref := image.FullName(named)
	img, lerr := st.Lookup(ref)
	if lerr == nil && opts.Pull != "always" {
		return img, nil
	}
	if lerr != nil && !errors.Is(lerr, store.ErrNotFound) {
		return store.Image{}, lerr
	}
	if local, ok := image.LookupLocal(st, opts.Image); ok && lerr != nil && opts.Pull != "always" {
		return local, nil // committed or loaded as localhost/…
	}
	if opts.Pull == "never" {
		return store.Image{}, fmt.Errorf("image %s is not in the store and --pull=never (hint: devbox pull %s)", ref, opts.Image)
	}
	var plat *v1.Platform
	if opts.Platform != "" {
		p, err := image.ParsePlatform(opts.Platform)
		if err != nil {
			return store.Image{}, cmdutil.FlagErrorf("%v", err)
		}
		plat = &p
	}
	saved := f.IOStreams.Out
	f.IOStreams.Out = f.IOStreams.ErrOut // the pulled reference is not the command's output
	_, err = cmdutil.PullImage(ctx, f, opts.Image, plat, false)
	f.IOStreams.Out = saved
	if err != nil {
		return store.Image{}, err
	}
	return st.Lookup(ref)
}

// cleanup removes an ephemeral box's directory. The init already removed
// what the user namespace owns; anything left over is removed there too.
func cleanup(ctx context.Context, f *cmdutil.Factory, st *store.Store, dir string) {
	// With the writable layer in memory only spec.json is left: two calls.
	_ = os.Remove(filepath.Join(dir, "spec.json"))
	_ = os.Remove(filepath.Join(dir, runtime.LockFile))
	if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
		return
	}
	if err := os.RemoveAll(dir); err == nil {
		return
	}
	if err := f.Remover(ctx, st)([]string{dir}); err != nil {
		fmt.Fprintf(f.IOStreams.ErrOut, "devbox: warning: could not remove %s: %v (hint: devbox image prune)\n", dir, err)
	}
}
