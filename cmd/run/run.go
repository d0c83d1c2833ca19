// Package run implements `devbox run`: an ephemeral box for one command.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/pull"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// StageInit is the stage name of the box init; cmd/devbox routes it.
const StageInit = "init"

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
	// NoHostLoopback hides the host's loopback from the box.
	NoHostLoopback bool
	Pull           string
	Platform       string
	TTY            bool
	NoTTY          bool
	Limits         cgroup.Limits
}

// NewCmdRun builds the command.
func NewCmdRun(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [--] [COMMAND [ARG...]]",
		Short: "Run a command in a new, ephemeral box (removed when it exits)",
		Long: "Run a command in a new box made from IMAGE, in its own user, mount, PID, UTS,\n" +
			"IPC and network namespaces. The box is removed when the command exits unless\n" +
			"--keep or --name is given. The command's exit code is devbox's exit code.",
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
	fl.StringVar(&opts.Net, "net", "", "network: slirp (private, user-mode), none (only lo) or host; or a driver: gvisor, pasta, slirp4netns (default "+DefaultNet+")")
	fl.StringArrayVarP(&opts.Publish, "publish", "p", nil, "publish a box port on the host: [HOST_IP:]HOST_PORT:BOX_PORT[/tcp|/udp] (HOST_IP defaults to 127.0.0.1)")
	fl.BoolVar(&opts.NoHostLoopback, "no-host-loopback", false, "do not map host.devbox.internal (the gateway) to the host's 127.0.0.1")
	fl.StringVar(&opts.Pull, "pull", "missing", "pull the image: missing, always or never")
	fl.StringVar(&opts.Platform, "platform", "", "image platform when pulling (os/arch[/variant])")
	fl.BoolVarP(&opts.TTY, "tty", "t", false, "allocate a terminal even when stdin is not one")
	fl.BoolVarP(&opts.NoTTY, "no-tty", "T", false, "never allocate a terminal")
	cmdutil.AddLimitFlags(fl, &opts.Limits)
	_ = cmd.RegisterFlagCompletionFunc("net", cobra.FixedCompletions(network.Modes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("pull", cobra.FixedCompletions([]string{"missing", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Run creates the box, runs the command and passes its exit code through.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
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
	// A limit that cannot be applied fails before anything is pulled.
	cgHost := cgroup.DetectHost()
	if _, err := cgroup.Decide(cgHost, opts.Limits); err != nil {
		return err
	}
	st, err := f.Store()
	if err != nil {
		return err
	}
	img, err := ensureImage(ctx, f, st, opts)
	if err != nil {
		return err
	}
	id, err := v1.NewHash(img.ID)
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Ref, err)
	}
	m, err := st.Manifest(id)
	if err != nil {
		return err
	}
	cfg, err := st.ConfigFile(m.Config.Digest)
	if err != nil {
		return err
	}
	ios := f.IOStreams
	terminal := (ios.InTTY && ios.OutTTY && !opts.NoTTY) || opts.TTY
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	nw, err := chooseNetwork(f, opts)
	if err != nil {
		return err
	}
	spec, err := runtime.NewSpec(cfg, runtime.CreateOptions{
		Name: opts.Name, Cmd: opts.Cmd, Env: opts.Env, HostEnv: os.Environ(), Workdir: opts.Workdir,
		User: opts.User, Hostname: opts.Hostname, Net: nw.choice.Driver, Terminal: terminal,
		Remove: !opts.Keep && opts.Name == "", ResolvConf: string(resolv),
	})
	if err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	nw.apply(spec, string(resolv))
	spec.ID = runtime.NewID()
	chains := store.ChainIDs(cfg.RootFS.DiffIDs)
	for i := len(chains) - 1; i >= 0; i-- {
		if !st.HasLayer(chains[i]) {
			return fmt.Errorf("layer %d of %s is not unpacked (hint: devbox pull %s)", i+1, img.Ref, img.Ref)
		}
		spec.Lowers = append(spec.Lowers, st.LayerDir(chains[i]))
	}
	spec.ContainerDir = filepath.Join(st.ContainersDir(), spec.ID)
	mapping, err := f.Mapping()
	if err != nil {
		return err
	}
	cg, cgFile, err := setupCgroup(ctx, cgHost, spec.ID, opts.Limits)
	if err != nil {
		return err
	}
	if cg != nil {
		defer cg.Remove() // when anything below fails; a no-op once removed
	}
	if err := os.MkdirAll(spec.ContainerDir, 0o700); err != nil {
		return fmt.Errorf("creating box directory: %w", err)
	}
	specPath := filepath.Join(spec.ContainerDir, "spec.json")
	if err := runtime.WriteSpec(specPath, spec); err != nil {
		return fmt.Errorf("writing box spec: %w", err)
	}
	if cg != nil {
		if err := cgroup.WriteRecord(spec.ContainerDir, cg.Path); err != nil {
			return err
		}
	}
	code, err := start(ios.InTTY && terminal, spec, specPath, mapping, cgFile, nw)
	if nerr := nw.finish(code); nerr != nil && err == nil {
		err = nerr
	}
	code = finishCgroup(ios.ErrOut, cg, cgFile, spec.ContainerDir, opts.Limits, code)
	if spec.Remove {
		cleanup(ctx, f, st, spec.ContainerDir)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &cmdutil.ExitError{Code: code}
	}
	return nil
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
	_, err = pull.Image(ctx, f, opts.Image, plat, false)
	f.IOStreams.Out = saved
	if err != nil {
		return store.Image{}, err
	}
	return st.Lookup(ref)
}

// start runs the init and returns the command's exit code.
func start(rawTTY bool, spec *runtime.Spec, specPath string, m rootless.Mapping, cg *os.File, nw *netRun) (int, error) {
	if rawTTY {
		if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			defer term.Restore(int(os.Stdin.Fd()), old)
		}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	extra, err := nw.start(spec.ID)
	if err != nil {
		return -1, err
	}
	// The init reports the command's exit code on this pipe as soon as the
	// box is cleaned up, so devbox need not wait for the kernel to tear the
	// namespaces down.
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer statusR.Close()
	statusFD := 3 + len(extra)
	extra = append(extra, statusW)
	p, err := rootless.Start(rootless.Spec{
		Stage: StageInit,
		Args:  []string{specPath, strconv.Itoa(statusFD)},
		// One P per helper: pids.max counts threads, and the helper and the
		// init live in the box's cgroup (--pids-limit).
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1"},
		Namespaces: rootless.Namespaces{Mount: true, PID: true, UTS: true, IPC: true, Net: spec.Net != "host"},
		Mapping:    m,
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		// With a pty the terminal's keys travel as bytes; otherwise only
		// devbox receives terminal signals and forwards each once.
		Setpgid:    !spec.Terminal,
		Cgroup:     cg,
		ExtraFiles: extra,
	})
	nw.started()
	statusW.Close()
	if err != nil {
		return -1, err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGWINCH && !spec.Terminal {
					continue
				}
				_ = p.Signal(s)
			case <-done:
				return
			}
		}
	}()
	reported := make(chan int, 1)
	go func() {
		b, _ := io.ReadAll(statusR)
		if c, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			reported <- c
		}
	}()
	exited := make(chan struct{})
	var code int
	go func() {
		code, err = p.Wait()
		close(exited)
	}()
	select {
	case c := <-reported:
		close(done)
		return c, nil
	case <-exited:
	}
	close(done)
	select {
	case c := <-reported: // written just before the init exited
		return c, nil
	default:
	}
	return code, err
}

// cleanup removes an ephemeral box's directory. The init already removed
// what the user namespace owns; anything left over is removed there too.
func cleanup(ctx context.Context, f *cmdutil.Factory, st *store.Store, dir string) {
	if err := os.RemoveAll(dir); err == nil {
		return
	}
	if err := f.Remover(ctx, st)([]string{dir}); err != nil {
		fmt.Fprintf(f.IOStreams.ErrOut, "devbox: warning: could not remove %s: %v (hint: devbox image prune)\n", dir, err)
	}
}
