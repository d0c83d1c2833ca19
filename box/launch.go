package box

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/self"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"github.com/devbox-dev/devbox/network"
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	"github.com/devbox-dev/devbox/runtime/agent"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// How a box init starts — the one way, for devbox run (Manager.Run) and a
// box's start (Manager.start) alike: launch. A run's init is started
// before its spec is computed and fed it on a pipe, from a warm holder's
// spare when one serves the start (internal/warm); a box's reads the spec
// it was written to. Afterwards, a run that finished leaves its replay
// record (SaveReplay).

// launchOptions say how launch starts a box init. Fields are required
// unless they say otherwise.
type launchOptions struct {
	// Dir is the box directory (in the store).
	Dir string
	// SpecPath is where a box's spec was written (Manager.start): its
	// init is detached, its stdout and stderr go to Log. "" for devbox
	// run: its init has devbox's stdio and dies with devbox, and reads
	// its spec from a pipe (launched.Run).
	SpecPath string
	Log      *os.File
	// Files are the init's descriptors from 3 on, before the network
	// helper's end of the handshake (a box's agent listener; optional).
	Files []*os.File
	// Net is the box's network; RunDir the runtime directory its helper
	// lives in.
	Net    *Network
	RunDir string
	IDs    rootless.Mapping
	// Cgroup is the box cgroup's directory, which the init is cloned into
	// (optional: nil without a cgroup).
	Cgroup *os.File
	// Terminal: devbox run's command gets a terminal.
	Terminal bool
	// Warm lets a warm holder's spare be devbox run's init
	// (rootless.Spec.Warm): for a start without a terminal whose spare can
	// be moved into the box's cgroup.
	Warm bool
}

// launched is a started box init: a run's, which waits for its spec
// (Run), or a box's.
type launched struct {
	sent    []byte // the spec as sent to the init
	p       *rootless.Process
	specW   *os.File // nil once the spec is sent
	statusR *os.File
	waited  bool
}

// launch starts a box init in its namespaces as o says: the network
// helper is prepared first and started once the init is (Network.Started),
// with its end of the handshake as the init's descriptor after o.Files
// (spec.NetFD). A run's init (o.SpecPath == "") reads its spec from a
// pipe and reports the command's exit code on another one as soon as the
// box is cleaned up, so devbox need not wait for the kernel to tear the
// namespaces down.
func launch(o launchOptions) (*launched, error) {
	files := slices.Clone(o.Files)
	netFile, err := o.Net.Start(o.RunDir)
	if err != nil {
		return nil, err
	}
	if netFile != nil {
		files = append(files, netFile)
	}
	l := &launched{}
	args := []string{o.SpecPath}
	proc := rootless.Spec{Stdout: o.Log, Stderr: o.Log, Detach: true}
	if o.SpecPath == "" {
		var ends []*os.File
		if args, ends, err = l.pipes(len(files), o.Dir); err != nil {
			return nil, err
		}
		// Closed once the init has them (or failed to start).
		defer ends[0].Close()
		defer ends[1].Close()
		proc = rootless.Spec{
			Warm:        warmStart(o, len(files)),
			EnterInMain: true,
			Stdin:       os.Stdin,
			Stdout:      os.Stdout,
			Stderr:      os.Stderr,
			// With a pty the terminal's keys travel as bytes; otherwise
			// only devbox receives terminal signals and forwards each once.
			Setpgid: !o.Terminal,
		}
		files = append(files, ends...)
	}
	proc.Stage = runtime.StageInit
	proc.Exe = InitExe()
	proc.Args = args
	proc.Env = initEnv()
	proc.Namespaces = rootless.Namespaces{Mount: true, PID: true, UTS: true, IPC: true, Net: o.Net.Choice.Driver != network.ModeHost}
	proc.Mapping = o.IDs
	proc.Cgroup = o.Cgroup
	proc.ExtraFiles = files
	l.p, err = rootless.Start(proc)
	o.Net.Started()
	if err != nil {
		l.closePipes()
		return nil, err
	}
	return l, nil
}

// pipes makes the status and spec pipes of a run's init, whose
// descriptors follow its first n (from 3), and returns the init's
// arguments and its ends of the pipes (for its descriptors 3+n, 3+n+1).
func (l *launched) pipes(n int, dir string) ([]string, []*os.File, error) {
	// A blocking pipe: devbox waits on it with a plain read(2) (see Run).
	var status [2]int
	if err := unix.Pipe2(status[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	statusR, statusW := os.NewFile(uintptr(status[0]), "status"), os.NewFile(uintptr(status[1]), "status")
	specR, specW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		statusW.Close()
		return nil, nil, err
	}
	l.statusR, l.specW = statusR, specW
	statusFD := 3 + n
	// The box directory is there for ps (and the tests) only.
	return []string{"fd:" + strconv.Itoa(statusFD+1), strconv.Itoa(statusFD), dir}, []*os.File{statusW, specR}, nil
}

func (l *launched) closePipes() {
	if l.statusR != nil {
		l.statusR.Close()
		l.specW.Close()
	}
}

// warmStart is what a run's start tells rootless about the warm path (nil:
// a cold start): with n descriptors before the pipes, n is 0 or, with a
// network helper and no published ports, 1 (the network handshake: a
// replay starts the helper too).
func warmStart(o launchOptions, n int) *rootless.Warm {
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if !o.Warm || !filepath.IsAbs(rt) {
		return nil
	}
	switch {
	case n == 0:
		return &rootless.Warm{RuntimeDir: rt}
	case n == 1 && o.Net.HasHelper() && len(o.Net.Choice.Publish) == 0:
		return &rootless.Warm{RuntimeDir: rt, Handshake: true}
	}
	return nil
}

// Pid is the init's pid.
func (l *launched) Pid() int { return l.p.Pid() }

// Wait waits for the init to exit and returns its exit code.
func (l *launched) Wait() (int, error) { return l.p.Wait() }

// SaveReplay records l's finished ephemeral run for warm's replay: the
// same command line, environment and directory will then run the same
// spec without the CLI while every input below (configPath, the
// configuration file, among them) is unchanged.
func (l *launched) SaveReplay(spec *runtime.Spec, st *store.Store, nw *Network, cgBase, configPath string) {
	r := l.p.Start()
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if r == nil || len(l.sent) == 0 || rt == "" || warm.Environ() == nil || warm.Off() {
		return
	}
	start := *r
	start.Args = slices.Clone(r.Args)
	for i, a := range start.Args {
		start.Args[i] = strings.ReplaceAll(a, spec.ID, warm.IDToken)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return
	}
	// What the spec was computed from, besides the command line and the
	// environment (the record's key) and devbox itself: the front that the
	// replay runs in, when one started this CLI (internal/self).
	exe, err := self.Path()
	if err != nil {
		return
	}
	guards := []string{configPath, st.IndexPath(), "/etc/resolv.conf", "/etc/hosts",
		"/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid", r.Exe}
	guards = append(guards, spec.Lowers...)
	p := warm.Replay{
		Start: start, Argv: os.Args, Environ: warm.KeyEnviron(warm.Environ(), os.Args), Cwd: cwd,
		Spec:       []byte(strings.ReplaceAll(string(l.sent), spec.ID, warm.IDToken)),
		BoxDir:     strings.ReplaceAll(spec.ContainerDir, spec.ID, warm.IDToken),
		CgroupBase: cgBase, Self: exe,
	}
	if nw.HasHelper() {
		// The helper as network/host.Prepare starts it; the runtime
		// directory is named by the id's first 16 characters.
		hc := rootless.HostStage(NetExe(), nethost.Stage)
		o, err := json.Marshal(nw.Choice.HelperOptions(nw.RunDir()))
		if err != nil || len(spec.ID) < 16 {
			return
		}
		id16 := spec.ID[:16]
		tokens := func(s string) string {
			return strings.ReplaceAll(strings.ReplaceAll(s, spec.ID, warm.IDToken), id16, warm.ID16Token)
		}
		p.HelperExe, p.HelperArgs = hc.Path, hc.Args
		p.HelperOptions, p.RunDir = []byte(tokens(string(o))), tokens(nw.RunDir())
		p.NetEarly = spec.NetEarly
		guards = append(guards, hc.Path)
	}
	p.Guarded = guards
	if err := warm.SaveReplay(rt, p); err != nil {
		trace.Mark("run: replay not saved: " + err.Error())
	}
}

// Abandon ends an init that never got its spec: without one it exits
// quietly, and devbox reports why it gave up.
func (l *launched) Abandon() {
	if l.waited {
		return
	}
	if l.specW != nil {
		l.specW.Close()
		l.specW = nil
	}
	_, _ = l.p.Wait()
	l.statusR.Close()
	l.waited = true
}

// Run sends spec to the init and returns the command's exit code.
func (l *launched) Run(spec *runtime.Spec, rawTTY bool) (int, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return -1, err
	}
	l.sent = b
	if rawTTY {
		if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			defer term.Restore(int(os.Stdin.Fd()), old)
		}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, append(slices.Clone(agent.Signals), syscall.SIGWINCH)...)
	// Stop waits for the runtime's signal loop to go idle (a scheduling
	// round): not on the way to the exit code.
	defer func() { go signal.Stop(sigs) }()
	_, werr := l.specW.Write(b)
	l.specW.Close()
	l.specW = nil
	if werr != nil {
		// The init is gone; its exit status tells why.
		code, err := l.p.Wait()
		l.waited = true
		l.statusR.Close()
		if err == nil {
			err = fmt.Errorf("the box init exited (%d) before it read its spec", code)
		}
		return -1, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGWINCH && !spec.Terminal {
					continue
				}
				_ = l.p.Signal(s)
			case <-done:
				return
			}
		}
	}()
	// The init writes the code in one write of a few bytes as soon as the
	// box is cleaned up; the end of file instead means it exited without
	// (its exit status says why). A plain blocking read wakes this very
	// thread, with no detour through the poller.
	c, ok := warm.ExitCode(int(l.statusR.Fd()))
	l.waited = true // reported: the init finishes exiting on its own and dies with devbox
	if ok {
		return c, nil
	}
	return l.p.Wait()
}

// initEnv is the box init's environment. One P per helper: pids.max counts
// threads, and the init lives in the box's cgroup (--pids-limit).
func initEnv() []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1"}
	if trace.On() {
		env = append(env, trace.Env+"=1")
	}
	return env
}
