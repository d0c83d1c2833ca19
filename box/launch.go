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
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	"github.com/devbox-dev/devbox/runtime/agent"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// The start of `devbox run`'s box: its init, started before the spec is
// computed and fed it on a pipe, from a warm holder's spare when one
// serves the start (internal/warm); and the replay record of a run that
// finished.

// startNetwork prepares the network helper of run id, in the run's
// runtime directory (named as rbox.Store.RunDir names a box's), and
// returns the files the box gets.
func startNetwork(nw *Network, id string) ([]*os.File, error) {
	if !nw.Choice.UserMode() {
		return nil, nil
	}
	base, err := rbox.RuntimeBase()
	if err != nil {
		return nil, err
	}
	f, err := nw.Start(filepath.Join(base, id[:min(len(id), 16)]))
	if err != nil {
		return nil, err
	}
	return []*os.File{f}, nil
}

// Launched is a run's box init, started before its spec exists.
type Launched struct {
	sent    []byte // the spec as sent to the init
	p       *rootless.Process
	nw      *Network
	specW   *os.File // nil once the spec is sent
	statusR *os.File
	waited  bool
}

// Launch starts the init of run id (devbox run) in its namespaces. It reads its spec from
// a pipe (see run) and reports the command's exit code on another one as
// soon as the box is cleaned up, so devbox need not wait for the kernel to
// tear the namespaces down. With warm, a warm holder's spare may be the
// init (rootless.Spec.Warm): for a start without a terminal whose spare
// can be moved into the box's cgroup.
func Launch(id, dir string, terminal bool, nw *Network, m rootless.Mapping, cg *os.File, warmOK bool) (*Launched, error) {
	extra, err := startNetwork(nw, id)
	if err != nil {
		return nil, err
	}
	// A blocking pipe: devbox waits on it with a plain read(2) (see run).
	var status [2]int
	if err := unix.Pipe2(status[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	statusR, statusW := os.NewFile(uintptr(status[0]), "status"), os.NewFile(uintptr(status[1]), "status")
	specR, specW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		statusW.Close()
		return nil, err
	}
	defer statusW.Close()
	defer specR.Close()
	var wm *rootless.Warm
	if rt := os.Getenv("XDG_RUNTIME_DIR"); warmOK && filepath.IsAbs(rt) {
		switch {
		case len(extra) == 0:
			wm = &rootless.Warm{RuntimeDir: rt}
		case len(extra) == 1 && nw.HasHelper() && len(nw.Choice.Publish) == 0:
			// The network handshake: a replay starts the helper too.
			wm = &rootless.Warm{RuntimeDir: rt, Handshake: true}
		}
	}
	statusFD := 3 + len(extra)
	extra = append(extra, statusW, specR)
	// The box directory is there for ps (and the tests) only.
	p, err := startInit([]string{"fd:" + strconv.Itoa(statusFD+1), strconv.Itoa(statusFD), dir}, nw.Choice.Driver, m, cg, extra,
		rootless.Spec{
			Warm:        wm,
			EnterInMain: true,
			Stdin:       os.Stdin,
			Stdout:      os.Stdout,
			Stderr:      os.Stderr,
			// With a pty the terminal's keys travel as bytes; otherwise
			// only devbox receives terminal signals and forwards each once.
			Setpgid: !terminal,
		})
	nw.Started()
	if err != nil {
		statusR.Close()
		specW.Close()
		return nil, err
	}
	return &Launched{p: p, nw: nw, specW: specW, statusR: statusR}, nil
}

// SaveReplay records l's finished ephemeral run for warm's replay: the
// same command line, environment and directory will then run the same
// spec without the CLI while every input below (configPath, the
// configuration file, among them) is unchanged.
func (l *Launched) SaveReplay(spec *runtime.Spec, st *store.Store, nw *Network, cgBase, configPath string) {
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
	// environment (the record's key).
	guards := []string{configPath, st.IndexPath(), "/etc/resolv.conf", "/etc/hosts",
		"/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid", r.Exe}
	guards = append(guards, spec.Lowers...)
	p := warm.Replay{
		Start: start, Argv: os.Args, Environ: warm.KeyEnviron(warm.Environ(), os.Args), Cwd: cwd,
		Spec:       []byte(strings.ReplaceAll(string(l.sent), spec.ID, warm.IDToken)),
		BoxDir:     strings.ReplaceAll(spec.ContainerDir, spec.ID, warm.IDToken),
		CgroupBase: cgBase,
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
		guards = append(guards, hc.Path)
	}
	// devbox itself: the front that the replay runs in, when one started
	// this CLI (internal/self).
	exe, err := self.Path()
	if err != nil {
		return
	}
	p.Guards = append(p.Guards, warm.GuardAs("/proc/self/exe", exe))
	for _, g := range guards {
		p.Guards = append(p.Guards, warm.Guard(g))
	}
	cgroup, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	p.Cgroup = string(cgroup)
	if err := warm.SaveReplay(rt, p); err != nil {
		trace.Mark("run: replay not saved: " + err.Error())
	}
}

// Abandon ends an init that never got its spec: without one it exits
// quietly, and devbox reports why it gave up.
func (l *Launched) Abandon() {
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
func (l *Launched) Run(spec *runtime.Spec, rawTTY bool) (int, error) {
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

// startInit starts a box init in its namespaces — of devbox run (Launch)
// or of a box (Manager.start) — with o's stdio, session and warm-path
// settings: the one place that says how a box init is started. args are
// the init's, net the box's network driver, cg its cgroup (or nil), extra
// its fds 3, ….
func startInit(args []string, net string, ids rootless.Mapping, cg *os.File, extra []*os.File, o rootless.Spec) (*rootless.Process, error) {
	o.Stage = runtime.StageInit
	o.Exe = InitExe()
	o.Args = args
	o.Env = initEnv()
	o.Namespaces = rootless.Namespaces{Mount: true, PID: true, UTS: true, IPC: true, Net: net != "host"}
	o.Mapping = ids
	o.Cgroup = cg
	o.ExtraFiles = extra
	return rootless.Start(o)
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
