package box

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/runtime"
	"github.com/devbox-dev/devbox/runtime/device"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// devbox run: an ephemeral box for one command (docker run --rm), or a
// kept one (--name, --keep; keep.go).

// Exit codes of a run that are devbox's, not the command's
// (docs/exit-codes.md; the CLI's cmdutil.ExitFailure and ExitOOM).
const (
	ExitFailure = 125 // devbox or the box's set-up failed
	ExitOOM     = 137 // the kernel OOM-killed a process of the box over its --memory
)

// RunOptions say what devbox run runs: its flags, and what the CLI knows
// of its stdio.
type RunOptions struct {
	Image    string
	Cmd      []string // replaces the image's command when not empty
	Name     string   // --name: keep the box under this name
	Keep     bool     // --keep: keep the box as run-<id>
	Env      []string
	Workdir  string
	User     string
	Hostname string
	Net      string // --net ("": the configured or built-in default)
	Publish  []string
	// HostLoopback lets the box reach the host's loopback (off by
	// default); NoHostLoopback says so explicitly.
	HostLoopback, NoHostLoopback bool
	Pull                         string // missing, always or never
	Platform                     string
	// TTY and NoTTY are -t and -T: a terminal always, or never.
	TTY, NoTTY bool
	Limits     cgroup.Limits
	// CapAdd, CapDrop and SecurityOpt change the box's confinement
	// (runtime.ParseSecurity).
	CapAdd, CapDrop, SecurityOpt []string
	// Devices are --device paths (device.Resolve).
	Devices []string
	// InTTY and OutTTY say whether devbox's stdin and stdout are
	// terminals (set by the CLI).
	InTTY, OutTTY bool
}

// RunResult is how a run ended.
type RunResult struct {
	// Code is the command's exit code, passed through (128+N for signal
	// N); ExitOOM after an OOM kill (OOM says which).
	Code int
	OOM  *OOMError
	// KeptAs names the box a --keep run (without --name) was kept as,
	// for the CLI to say; it may come with an error.
	KeptAs string
}

// terminal reports whether the command gets a terminal: -t, or stdin and
// stdout are terminals and not -T.
func (o *RunOptions) terminal() bool {
	return (o.InTTY && o.OutTTY && !o.NoTTY) || o.TTY
}

// kept reports whether the run's box outlives its command.
func (o *RunOptions) kept() bool { return o.Keep || o.Name != "" }

// check validates o's flags before anything is done and returns the box's
// confinement; o.Devices are resolved in place.
func (o *RunOptions) check() (runtime.Security, error) {
	if o.Name != "" {
		if err := runtime.ValidateName(o.Name); err != nil {
			return runtime.Security{}, inputErrorf("%v", err)
		}
	}
	switch o.Pull {
	case "missing", "always", "never":
	default:
		return runtime.Security{}, inputErrorf("invalid --pull %q (hint: use missing, always or never)", o.Pull)
	}
	if err := o.Limits.Validate(); err != nil {
		return runtime.Security{}, inputErrorf("%v", err)
	}
	sec, err := runtime.ParseSecurity(o.CapAdd, o.CapDrop, o.SecurityOpt, false)
	if err != nil {
		return runtime.Security{}, inputErrorf("%v", err)
	}
	devs := make([]string, len(o.Devices))
	for i, d := range o.Devices {
		if devs[i], err = device.Resolve(d); err != nil {
			return runtime.Security{}, inputErrorf("%v", err)
		}
	}
	o.Devices = devs
	return sec, nil
}

// Run runs o's command in a new box and passes its exit code through:
// the box's init starts while the image is resolved (pulled when o.Pull
// says) and its spec computed, and the box is removed when the command
// exits unless it is kept (o.Name, o.Keep). An error is devbox's own
// failure (exit code ExitFailure).
func (m *Manager) Run(o RunOptions) (RunResult, error) {
	trace.Mark("run: start")
	sec, err := o.check()
	if err != nil {
		return RunResult{}, err
	}
	// A limit that cannot be applied fails before anything is pulled.
	cgHost := cgroup.DetectHost()
	if _, err := cgroup.Decide(cgHost, o.Limits); err != nil {
		return RunResult{}, err
	}
	trace.Mark("run: flags checked")
	set, err := m.settings()
	if err != nil {
		return RunResult{}, err
	}
	nw, err := runNetwork(set, &o)
	if err != nil {
		return RunResult{}, err
	}
	id := runtime.NewID()
	// A kept run is a box: its name must be free.
	if o.kept() {
		if err := checkName(m.bs, keptName(o.Name, id)); err != nil {
			return RunResult{}, err
		}
	}
	// Held until devbox ends (or dies): devbox prune removes this run's
	// box and runtime directories only once it is free.
	releaseRun, err := m.st.RunLock(id, store.RunInfo{PID: os.Getpid(), Image: o.Image, Name: runName(o.Keep, o.Name, id)})
	if err != nil {
		return RunResult{}, err
	}
	defer releaseRun()
	// Where this process started (Setup may move it): a warm holder's
	// spare, started from here, can join the box's cgroup only when a move
	// from there is allowed.
	var from string
	if cgHost.Mode == cgroup.Unified {
		from, _ = cgHost.Self()
	}
	cg, cgFile, err := setupCgroup(m.ctx, cgHost, id, o.Limits)
	if err != nil {
		return RunResult{}, err
	}
	joinable := cg == nil || from != "" && cgroup.MayMove(cgHost.Root, from, cg.Path, os.Getuid())
	if cg != nil {
		defer cg.Remove() // when anything below fails; a no-op once removed
		if nw != nil {
			nw.Choice.Cgroup = cg.Path
		}
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
	terminal := o.terminal()
	in := runInputs{ID: id, Dir: filepath.Join(m.st.ContainersDir(), id), Terminal: terminal, Net: nw,
		Security: sec, ScratchOnDisk: set.ScratchOnDisk}
	pc := make(chan prepared, 1)
	go func() {
		spec, img, err := m.prepareRun(&o, in)
		pc <- prepared{spec, img, err}
	}()
	// A spare lives in its holder's session: not for a run on a terminal.
	l, err := launch(launchOptions{Dir: in.Dir, Net: nw, RunDir: m.bs.RunDir(id), IDs: m.ids, Cgroup: cgFile,
		Terminal: terminal, Warm: warmable(sec, joinable, terminal || o.InTTY || o.OutTTY), Sealed: sec.MayTrace()})
	// Last (deferred first): a run that ends before finish leaves no
	// runtime directory behind.
	defer nw.Abandon()
	if err != nil {
		<-pc
		return RunResult{}, err
	}
	defer l.Abandon()
	// A helper that fails while the command runs is said at once (the
	// command goes on: its exit code stays its own). On a terminal in raw
	// mode (l.Run) a line feed does not return the carriage.
	rawTTY := o.InTTY && terminal
	nw.Watch(func(msg string) {
		if rawTTY {
			msg += "\r"
		}
		m.warn("%s", msg)
	})
	pr := <-pc
	if pr.err != nil {
		return RunResult{}, pr.err
	}
	spec := pr.spec
	var res RunResult
	if res.KeptAs, err = m.recordRun(&o, set, spec, pr.img, cg); err != nil {
		return res, err
	}
	trace.Mark("run: spec written")
	// Replayable: what devbox prints and does beyond the init's work is
	// nothing but passing on the exit code (a single-id mapping warns on
	// every run).
	cgBase := replayCgroupBase(cg, o.Limits, joinable)
	replay := replayable(&o, spec, cg != nil, cgBase) && !m.ids.Single()
	res.Code, err = l.Run(spec, rawTTY)
	// Not with a network that failed: a replay would fail it again
	// without a word.
	if replay && err == nil && res.Code != ExitFailure && !nw.Warned() {
		l.SaveReplay(spec, m.st, nw, cgBase, set.Path)
	}
	if nerr := nw.Finish(res.Code == ExitFailure || res.Code < 0); nerr != nil && err == nil {
		err = nerr
	}
	oom, cgErr := finishCgroup(cg, cgFile, spec.ContainerDir, o.Limits)
	if oom != nil {
		res.OOM, res.Code = oom, ExitOOM
	}
	if cgErr != nil {
		m.warn("%s", strings.TrimPrefix(cgErr.Error(), "devbox: "))
	}
	trace.Mark("run: exit code received")
	if spec.Remove {
		m.cleanupRun(spec.ContainerDir)
	}
	trace.Mark("run: done")
	return res, err
}

// runNetwork resolves a run's network flags on this host. Every box of
// devbox run is a sandbox: no host loopback unless --host-loopback.
func runNetwork(set Settings, o *RunOptions) (*Network, error) {
	n, err := chooseNetwork(set.Network, o.Net, NetworkFlags{Publish: o.Publish,
		HostLoopback: o.HostLoopback, NoHostLoopback: o.NoHostLoopback, Sandboxed: true, NoAutoPorts: true})
	if err != nil {
		return nil, err
	}
	// Known now: the helper starts while the spec is being made.
	n.Choice.Hostname = runtime.Hostname(o.Hostname, o.Name)
	return n, nil
}

// replayable reports whether a replay may repeat run o, whose spec is
// spec: an ephemeral box without a terminal, its writable layer in memory,
// its image not pulled every time, and no cgroup or one in cgBase.
func replayable(o *RunOptions, spec *runtime.Spec, hasCgroup bool, cgBase string) bool {
	return !spec.Terminal && o.Pull != "always" && spec.Remove && spec.ScratchInMemory && (!hasCgroup || cgBase != "") &&
		!spec.Security.Unconfined && !spec.Security.MayTrace()
}

// warmable says whether a run may start from a warm holder's spare: one
// whose init may join the box's cgroup (joinable), not on a terminal (a
// spare lives in its holder's session), and not with seccomp unconfined.
// Boxes from one holder share its user namespace, and with it the user
// keyrings of each uid in it (the kernel keys them by namespace), which
// the default filter keeps a box from reaching (keyctl, add_key and
// request_key are refused) and an unconfined one does not: a cold start's
// namespace is its own (TestEscapeWarmKeyringShared). A replay goes
// through a holder too (replayable).
//
// Nor a box whose commands may trace its init (runtime.Security.MayTrace):
// a spare runs the init's program from its file in the runtime directory,
// which such a box could replace (launchOptions.Sealed).
func warmable(sec runtime.Security, joinable, terminal bool) bool {
	return joinable && !terminal && !sec.Unconfined && !sec.MayTrace()
}

// replayCgroupBase is the delegated base a replay of the run may make its
// box cgroup in ("" when it may not): a box cgroup without limits in a
// delegated base (not a scope of its own) is a mkdir a replay can repeat,
// when the spare may be moved into it (joinable).
func replayCgroupBase(cg *cgroup.Box, l cgroup.Limits, joinable bool) string {
	if cg == nil || cg.Kind == cgroup.Scope || l.Any() || !joinable {
		return ""
	}
	return filepath.Join(cg.Root, path.Dir(cg.Path))
}

// recordRun writes what the store keeps of a run before its command runs:
// spec.json (first: image prune keeps the layers a spec.json names), the
// cgroup record, and for a kept run its box record. It returns the name of
// a box kept by --keep alone.
func (m *Manager) recordRun(o *RunOptions, set Settings, spec *runtime.Spec, img store.Image, cg *cgroup.Box) (string, error) {
	if err := os.MkdirAll(spec.ContainerDir, 0o700); err != nil {
		return "", fmt.Errorf("creating box directory: %w", err)
	}
	if err := runtime.WriteSpec(filepath.Join(spec.ContainerDir, "spec.json"), spec); err != nil {
		return "", fmt.Errorf("writing box spec: %w", err)
	}
	if cg != nil {
		if err := cgroup.WriteRecord(spec.ContainerDir, cg.Path); err != nil {
			return "", err
		}
	}
	if !o.kept() {
		return "", nil
	}
	name := keptName(o.Name, spec.ID)
	keep := keepOptions{Name: o.Name, Net: o.Net, CapAdd: o.CapAdd, CapDrop: o.CapDrop,
		SecurityOpt: o.SecurityOpt, Limits: o.Limits, Publish: o.Publish, HostLoopback: o.HostLoopback}
	if err := keepAsBox(m.bs, set.Network, name, keep, spec, img); err != nil {
		return "", err
	}
	if o.Name != "" {
		return "", nil
	}
	return name, nil
}

// runInputs are what a run's spec is made of besides its flags and its
// image.
type runInputs struct {
	ID       string
	Dir      string // the box directory
	Terminal bool
	Net      *Network
	Security runtime.Security
	// ScratchOnDisk: an ephemeral box's writable layer is on disk
	// (configuration [run] scratch = "disk"), not in memory.
	ScratchOnDisk bool
	// HostEnv is devbox's environment; ResolvConf the host's
	// /etc/resolv.conf (prepareRun fills both).
	HostEnv    []string
	ResolvConf string
	// Lowers are the image's layer directories, top first.
	Lowers []string
}

// prepareRun resolves the run's image (pulling it when needed) and
// computes its spec.
func (m *Manager) prepareRun(o *RunOptions, in runInputs) (*runtime.Spec, store.Image, error) {
	img, cfg, lowers, err := m.runImage(o)
	if err != nil {
		return nil, img, err
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	in.HostEnv, in.ResolvConf, in.Lowers = os.Environ(), string(resolv), lowers
	spec, err := runSpec(cfg, o, in)
	return spec, img, err
}

// runSpec is the spec of a run: o's flags applied to the image's
// configuration cfg (pure; table-tested).
func runSpec(cfg *v1.ConfigFile, o *RunOptions, in runInputs) (*runtime.Spec, error) {
	spec, err := runtime.NewSpec(cfg, runtime.CreateOptions{
		Name: o.Name, Cmd: o.Cmd, Env: o.Env, HostEnv: in.HostEnv, Workdir: o.Workdir,
		User: o.User, Hostname: o.Hostname, Net: in.Net.Choice.Driver, Terminal: in.Terminal,
		Remove: !o.kept(), ResolvConf: in.ResolvConf, Devices: o.Devices,
	})
	if err != nil {
		return nil, inputErrorf("%v", err)
	}
	in.Net.Apply(spec, in.ResolvConf, 3) // the only extra file of devbox run
	if spec.Remove {
		spec.ScratchInMemory = !in.ScratchOnDisk
		spec.ScratchBytes = o.Limits.Memory
	}
	spec.ID = in.ID
	spec.Lowers = in.Lowers
	spec.ContainerDir = in.Dir
	spec.Security = in.Security
	// A sandbox on the host's network: not its abstract sockets.
	spec.Security.ScopeAbstract = spec.Net == "host"
	return spec, nil
}

// runImage finds the run's image as create and shell do (Manager.Image),
// and returns it with its configuration and layer directories (top
// first).
func (m *Manager) runImage(o *RunOptions) (store.Image, *v1.ConfigFile, []string, error) {
	img, cfg, err := m.image(o.Image, o.Platform, o.Pull, false)
	if err != nil {
		return img, nil, nil, err
	}
	var lowers []string
	chains := store.ChainIDs(cfg.RootFS.DiffIDs)
	for i := len(chains) - 1; i >= 0; i-- {
		if !m.st.HasLayer(chains[i]) {
			return img, nil, nil, fmt.Errorf("layer %d of %s is not unpacked (hint: devbox pull %s)", i+1, img.Ref, img.Ref)
		}
		lowers = append(lowers, m.st.LayerDir(chains[i]))
	}
	return img, cfg, lowers, nil
}

// cleanupRun removes an ephemeral box's directory. The init already
// removed what the user namespace owns; anything left over is removed
// there too.
func (m *Manager) cleanupRun(dir string) {
	// With the writable layer in memory only spec.json is left: two calls.
	_ = os.Remove(filepath.Join(dir, "spec.json"))
	_ = os.Remove(filepath.Join(dir, runtime.LockFile))
	if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
		return
	}
	if err := os.RemoveAll(dir); err == nil {
		return
	}
	if err := m.Remover()([]string{dir}); err != nil {
		m.warn("could not remove %s: %v (hint: devbox image prune)", dir, err)
	}
}
