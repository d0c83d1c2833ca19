package warm

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/network/host/status"
	"github.com/devbox-dev/devbox/runtime/agent"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Replay is a replay record: a finished run's Start, spec and inputs,
// which TryReplay repeats with a fresh box id (box.Launched.SaveReplay
// decides which runs qualify). IDToken and ID16Token stand for the id.
type Replay struct {
	Start
	Magic string
	// Sum is one digest of everything the record depends on: the key,
	// /proc/self/cgroup, devbox's state and each Guarded file's (sum).
	Sum     string
	Guarded []string        // the files the spec was computed from, but devbox
	Spec    json.RawMessage // the spec sent to the init
	BoxDir  string
	// CgroupBase is the delegated base in which the box got a cgroup
	// without limits, a plain mkdir (boxCgroup).
	CgroupBase string `json:",omitempty"`
	// The network helper of a user-mode network: program, arguments,
	// options (on its stdin) and the box's runtime directory (its log).
	HelperExe     string          `json:",omitempty"`
	HelperArgs    []string        `json:",omitempty"`
	HelperOptions json.RawMessage `json:",omitempty"`
	RunDir        string          `json:",omitempty"`
	// NetEarly is the spec's: the box does not wait for its helper, whose
	// failure the replay then says while the box runs (status.Watch).
	NetEarly bool `json:",omitempty"`
	// The key's parts and devbox (internal/self), for SaveReplay only.
	Argv, Environ []string `json:"-"`
	Cwd, Self     string   `json:"-"`
}

const recordMagic = "devbox-warm-3"

// valid checks a record read back for runtime directory rt: the
// directories a replay makes and removes are a fresh box's only,
// <store>/containers/{id} and rt/devbox/{id16}.
func (p *Replay) valid(rt string) bool {
	base, found := strings.CutSuffix(p.BoxDir, "/containers/"+IDToken)
	return p.Magic == recordMagic && p.Start.valid() && len(p.Spec) > 0 && found && strings.HasPrefix(base, "/") &&
		!dotSegment(base) && !strings.Contains(base, IDToken) && (p.HelperExe != "") == p.Handshake &&
		(p.HelperExe == "" || p.RunDir == rt+"/devbox/"+ID16Token)
}

// keyNames and keyPrefixes are the environment variables a run can depend
// on (TestKeyCoversGetenv checks every variable devbox's code reads); so
// does any variable named on the command line (--env KEY).
var (
	keyNames    = []string{"TERM", "COLORTERM", "HOME", "USER", "LOGNAME", "PATH", "SHELL", "TMPDIR", "LANG", "LANGUAGE", "TZ", "SOURCE_DATE_EPOCH", "DBUS_SESSION_BUS_ADDRESS"}
	keyPrefixes = []string{"DEVBOX_", "_DEVBOX_", "XDG_", "LC_", "GO"}
)

// KeyEnviron is the part of environ that keys a replay record, sorted.
func KeyEnviron(environ, argv []string) []string {
	var out []string
	for _, kv := range environ {
		if name, _, _ := strings.Cut(kv, "="); KeyVar(name, argv) {
			out = append(out, kv)
		}
	}
	sort.Strings(out)
	return out
}

// KeyVar reports whether variable name keys a replay record.
func KeyVar(name string, argv []string) bool {
	if slices.Contains(keyNames, name) {
		return true
	}
	for _, p := range keyPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name != "" && slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, name) })
}

// HasEnvFlag reports whether a command line may set a box variable: -e or
// --env in any spelling. Any single-dash argument with an "e" counts: a yes
// only costs a run its replay.
func HasEnvFlag(argv []string) bool {
	return slices.ContainsFunc(argv, func(a string) bool {
		return a == "--env" || strings.HasPrefix(a, "--env=") || len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.Contains(a, "e")
	})
}

// key is what a record is looked up by, a digest (no variable's value is
// written to disk): command line, key environment and directory.
func key(argv, environ []string, cwd string) string {
	return digest(slices.Concat(argv, []string{"\x00env"}, environ, []string{"\x00cwd", cwd})...)
}

// ReplayName is the file name of the replay record for a key (256 buckets).
func ReplayName(argv, environ []string, cwd string) string { return "r-" + key(argv, environ, cwd)[:2] }

// SaveReplay writes the record of a run (0600, atomically) if runtimeDir
// is Private and the command line sets no box variable (whose value would
// be in the spec).
func SaveReplay(runtimeDir string, p Replay) error {
	if HasEnvFlag(p.Argv) {
		return errors.New("the command line sets box environment variables (-e/--env): not recorded")
	}
	if !Private(runtimeDir) {
		return errors.New("the runtime directory is not a private directory of yours: not recorded")
	}
	k := key(p.Argv, p.Environ, p.Cwd)
	p.Magic, p.Sum = recordMagic, p.sum(k, p.Self)
	b, err := json.Marshal(&p)
	if err == nil {
		err = os.MkdirAll(Dir(runtimeDir), 0o700)
	}
	if err != nil {
		return err
	}
	return safefile.WriteFile(Dir(runtimeDir)+"/r-"+k[:2], b, 0o600)
}

// sum is a record's Sum for key, with self devbox.
func (p *Replay) sum(key, self string) string {
	cgroup, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	parts := []string{key, string(cgroup), state(self)}
	for _, g := range p.Guarded {
		parts = append(parts, g, state(g))
	}
	return digest(parts...)
}

// startEnviron is the environment the CLI started with (it changes its
// own: --log-level).
var startEnviron []string

// Environ is the environment the CLI started with, nil before Started.
func Environ() []string { return startEnviron }

// Started records the environment the CLI started with.
func Started(environ []string) { startEnviron = environ }

// TryReplay runs the box of a matching replay record through a holder and
// returns its exit code, or ok false (nothing has happened then).
func TryReplay(argv, environ []string) (code int, ok bool) {
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if Off() || os.Getenv(Knob) == "noreplay" || len(argv) < 3 || !strings.HasPrefix(rt, "/") || term.IsTerminal(0) || term.IsTerminal(1) || !Private(rt) {
		return 0, false
	}
	cwd, err := os.Getwd()
	if err != nil {
		return 0, false
	}
	k, id := key(argv, KeyEnviron(environ, argv), cwd), randomID()
	p, ok := readRecord(Dir(rt) + "/r-" + k[:2])
	if !ok || !p.valid(rt) || id == "" || p.Sum == "" || p.Sum != p.sum(k, "/proc/self/exe") {
		return 0, false
	}
	trace.Mark("warm: replaying")
	ids := strings.NewReplacer(IDToken, id, ID16Token, id[:16])
	r := &replay{p: p, id: id, ids: ids, boxDir: ids.Replace(p.BoxDir)}
	code, ok = r.run(rt)
	trace.Mark("warm: done")
	return code, ok
}

// replay is one replayed run.
type replay struct {
	p      *Replay
	id     string
	ids    *strings.Replacer // the tokens by the box's id
	boxDir string
	runDir string
	net    *status.Teller // says the network helper's failure, once
	cg     *boxCgroup
	// ours and theirs hold, per kind of the start, devbox's end and the init's.
	ours, theirs []int
}

// run is TryReplay once the record matched.
func (r *replay) run(rt string) (int, bool) {
	// As devbox run's (image/store.RunLock): prune leaves the box alone.
	lock, err := safefile.OpenLock(path.Dir(path.Dir(r.boxDir))+"/locks/run-"+r.id+".lock", 0o600)
	if err != nil {
		return 0, false
	}
	defer func() { os.Remove(lock.Name()); lock.Close() }()
	if safefile.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return 0, false
	}
	if r.p.CgroupBase != "" {
		if r.cg = newBoxCgroup(r.p.CgroupBase, r.id); r.cg == nil {
			return 0, false
		}
	}
	spec := []byte(r.ids.Replace(string(r.p.Spec)))
	// First, as devbox run: image prune keeps the layers a spec.json names.
	if err := os.MkdirAll(r.boxDir, 0o700); err != nil || safefile.WriteFile(r.boxDir+"/spec.json", spec, 0o600) != nil {
		return r.fail("writing the box spec")
	}
	files, err := r.pipes()
	if err != nil {
		return r.fail("making the init's descriptors")
	}
	// The network helper first, to overlap its start; should no spare take
	// the box, it ends with the init's end of the handshake (fail).
	if r.p.HelperExe != "" {
		r.runDir = r.ids.Replace(r.p.RunDir)
		helperStatus, err := r.startHelper()
		if err != nil {
			return r.fail("starting the network helper: " + err.Error())
		}
		defer helperStatus.Close()
		// As devbox run: a helper that fails while the box runs is said.
		r.net = status.NewTeller(func(err error) {
			os.Stderr.WriteString("devbox: warning: " + status.Warning(err, r.runDir+"/net.log", status.RunRemedy) + "\n")
		})
		go status.Watch(helperStatus, r.p.NetEarly, r.net.Failed)
	}
	cgFD := -1
	if r.cg != nil {
		cgFD = r.cg.fd
	}
	args := strings.Split(r.ids.Replace(strings.Join(r.p.Args, "\x00")), "\x00") // no NUL in an argument
	// Signals from the start byte on reach the command through the init.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, agent.Signals...)
	n := len(r.ours)
	status, specW := r.ours[n-3], r.ours[n-2]
	h, _ := Take(rt, Fingerprint(&r.p.Start, r.cg != nil), args, files, cgFD, r.ours[n-1])
	if h == nil {
		signal.Stop(sigs)
		return r.fail("no holder") // the CLI starts one
	}
	go func() {
		for s := range sigs {
			_ = h.Signal(s.(syscall.Signal))
		}
	}()
	for _, fd := range r.theirs {
		unix.Close(fd)
	}
	if r.cg != nil {
		r.cg.record(r.boxDir)
	}
	trace.Mark("warm: started")
	specFile := os.NewFile(uintptr(specW), "spec")
	_, _ = specFile.Write(spec)
	specFile.Close()
	code, ok := ExitCode(status)
	if !ok {
		// The init ended without reporting: its status says why.
		if code, ok = h.Wait(); !ok {
			code = 125
		}
	}
	trace.Mark("warm: exit code received")
	return r.end(code), true
}

// end removes what the replay made and returns the run's exit code, as
// devbox run would: an OOM kill reported, the network helper's log kept
// when the box did not start.
func (r *replay) end(code int) int {
	if r.cg != nil {
		code = r.cg.finish(code, r.boxDir)
	}
	warned := r.net != nil && r.net.Stop() != nil // its log stays: the warning named it
	switch {
	case r.runDir == "" || warned:
	case code == 125:
		os.Stderr.WriteString("devbox: the box did not start; the network helper's log is " + r.runDir + "/net.log\n")
	default:
		os.RemoveAll(r.runDir)
	}
	if err := os.RemoveAll(r.boxDir); err != nil {
		os.Stderr.WriteString("devbox: warning: could not remove " + r.boxDir + ": " + err.Error() + " (hint: devbox image prune)\n")
	}
	return code
}

// ExitCode reads the exit code a box init reports on its status pipe fd;
// false when it ended without one. A blocking read: no detour through the
// runtime's poller.
func ExitCode(fd int) (int, bool) {
	var buf [16]byte
	for {
		n, err := unix.Read(fd, buf[:])
		if err != unix.EINTR {
			c, cerr := strconv.Atoi(strings.TrimSpace(string(buf[:max(n, 0)])))
			return c, err == nil && cerr == nil
		}
	}
}

// pipes makes the init's descriptors (Start.Handshake) and returns its
// 0, 1, 2, 3, ….
func (r *replay) pipes() ([]int, error) {
	if r.p.Handshake {
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		r.ours, r.theirs = append(r.ours, p[0]), append(r.theirs, p[1])
		if err := unix.SetsockoptInt(p[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			return nil, err
		}
	}
	for _, toInit := range []bool{false, true, true} {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return nil, err
		}
		if toInit {
			p[0], p[1] = p[1], p[0]
		}
		r.ours, r.theirs = append(r.ours, p[0]), append(r.theirs, p[1])
	}
	return append([]int{0, 1, 2}, r.theirs...), nil
}

// fail undoes a replay that has not started its box and leaves the run to
// the CLI.
func (r *replay) fail(why string) (int, bool) {
	for _, fd := range append(r.ours, r.theirs...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	r.end(0)
	trace.Mark("warm: replay abandoned: " + why)
	return 0, false
}

// startHelper starts the network helper as network/host.Prepare does and
// returns the read end of its status pipe.
func (r *replay) startHelper() (*os.File, error) {
	if err := os.Mkdir(r.runDir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(r.runDir+"/net.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	stR, stW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer stW.Close()
	sock := os.NewFile(uintptr(r.ours[0]), "handshake") // the helper's, once started
	defer sock.Close()
	r.ours[0] = -1
	c := &exec.Cmd{Path: r.p.HelperExe, Args: r.p.HelperArgs, Stdin: strings.NewReader(r.ids.Replace(string(r.p.HelperOptions))), Stdout: logf, Stderr: logf,
		ExtraFiles: []*os.File{sock, stW}, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "_DEVBOX_") {
			c.Env = append(c.Env, kv)
		}
	}
	c.Env = append(c.Env, "_DEVBOX_STAGE=net")
	if err := c.Start(); err != nil {
		stR.Close()
		return nil, err
	}
	return stR, nil
}

// dotSegment reports whether path p has a "." or ".." segment.
func dotSegment(p string) bool {
	return slices.ContainsFunc(strings.Split(p, "/"), func(s string) bool { return s == "." || s == ".." })
}
