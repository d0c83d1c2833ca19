package warm

import (
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/internal/trace"
	"golang.org/x/sys/unix"
)

// A replay record lets a later `devbox run` with exactly the same command
// line, environment (KeyEnviron), working directory and inputs skip the
// CLI: cmd/devbox's main calls TryReplay first, which hands the record's spec
// (with a fresh box id) to a holder's spare (and starts the network
// helper, with a user-mode network), forwards signals, passes the exit
// code on and removes the box directory. Only ephemeral, non-terminal runs
// without published ports, limits or pull qualify (the CLI decides, see
// cmd/run), and a record is used only while every file the earlier run's
// result depended on (the config file, the store's index, the image's
// layers, /etc/subuid and friends, devbox itself) is unchanged, down to
// inode, size and modification time, and /proc/self/cgroup reads the
// same. Without a holder, on any mismatch, or on any failure before the
// start byte, the run is left to the CLI.

// Replay is what a run records besides its Start.
type Replay struct {
	Argv    []string // the whole command line
	Environ []string // the key environment (KeyEnviron); read back from a record, its EnvDigest alone
	Cwd     string
	Spec    []byte   // the spec sent to the init, IDToken for the box id
	BoxDir  string   // the box directory, IDToken for the id
	Guards  []string // Guard lines: files whose state the spec depends on
	Cgroup  string   // /proc/self/cgroup
	// CgroupBase is the directory (under the cgroup2 mount) in which the
	// box got its cgroup, when it had one there without limits: a
	// delegated base where a box's cgroup is a plain mkdir (boxCgroup).
	CgroupBase string
	// The network helper of a user-mode network, when there is one: its
	// program and arguments, its options (JSON, on its stdin; ID16Token for
	// the first 16 characters of the box id) and the box's runtime
	// directory, where it logs (net.log) and keeps its state.
	HelperExe     string
	HelperArgs    []string
	HelperOptions []byte
	RunDir        string
}

// keyNames and keyPrefixes are the environment variables a run can depend
// on: devbox's own and the Go runtime's settings, the directories and
// identity it works from, and what reaches the box (TERM and COLORTERM;
// the box's environment is otherwise the image's and --env's). A variable
// named anywhere on the command line (--env KEY copies its value) counts
// too. TestKeyCoversGetenv checks every variable devbox's code reads.
var (
	keyNames    = []string{"TERM", "COLORTERM", "HOME", "USER", "LOGNAME", "PATH", "SHELL", "TMPDIR", "LANG", "LANGUAGE", "TZ", "SOURCE_DATE_EPOCH", "DBUS_SESSION_BUS_ADDRESS"}
	keyPrefixes = []string{"DEVBOX_", "_DEVBOX_", "XDG_", "LC_", "GO"}
)

// KeyEnviron is the part of environ that keys a replay record, sorted
// (shells pass the same environment in different orders).
func KeyEnviron(environ, argv []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if KeyVar(name, argv) {
			out = append(out, kv)
		}
	}
	sort.Strings(out)
	return out
}

// KeyVar reports whether variable name keys a replay record.
func KeyVar(name string, argv []string) bool {
	for _, n := range keyNames {
		if name == n {
			return true
		}
	}
	for _, p := range keyPrefixes {
		if len(name) >= len(p) && name[:len(p)] == p {
			return true
		}
	}
	for _, a := range argv {
		if name != "" && strings.Contains(a, name) {
			return true
		}
	}
	return false
}

// HasEnvFlag reports whether a command line may set a variable of the
// box's environment: -e or --env in any spelling (-e K=V, -eK=V, -te K,
// --env K, --env=K=V). It errs towards yes — any single-dash argument with
// an "e" counts, the command's own arguments included — since a yes only
// costs a run its early start and replay.
func HasEnvFlag(argv []string) bool {
	for _, a := range argv {
		switch {
		case a == "--env" || len(a) > 6 && a[:6] == "--env=":
			return true
		case len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.Contains(a, "e"):
			return true
		}
	}
	return false
}

// EnvDigest stands for a replay's key environment in its record, so that
// no value (a token in GOPROXY, say) is written to disk: "#" and 128 bits
// of two FNV-1a hashes of names and values. Not a cryptographic hash
// (package crypto initialises too late, see the package doc); it only
// decides whether a run matches a record the user wrote.
func EnvDigest(environ []string) string {
	h1 := hash(environ)
	h2 := uint64(0x84222325cbf29ce4)
	for _, s := range environ {
		for i := len(s) - 1; i >= 0; i-- {
			h2 ^= uint64(s[i])
			h2 *= 1099511628211
		}
		h2 ^= 0xff
		h2 *= 1099511628211
	}
	pad := func(h uint64) string {
		s := strconv.FormatUint(h, 16)
		for len(s) < 16 {
			s = "0" + s
		}
		return s
	}
	return "#" + pad(h1) + pad(h2)
}

// keyDigest is EnvDigest(environ), or environ's one entry when that is a
// digest already (a record read back).
func keyDigest(environ []string) string {
	if len(environ) == 1 && len(environ[0]) == 33 && environ[0][0] == '#' {
		return environ[0]
	}
	return EnvDigest(environ)
}

// ReplayName is the file name of the replay record for a command line,
// key environment and working directory: one of 64 buckets (the record
// holds its key in full).
func ReplayName(argv, environ []string, cwd string) string {
	key := append(append([]string{}, argv...), "\x00env", keyDigest(environ))
	return "r-" + bucket(hash(append(key, "\x00cwd", cwd)), 64)
}

// SaveReplay writes the record of a run: s is its start, keyed by p's
// command line, environment and directory. No value of an environment
// variable reaches the file: a command line that may set one for the box
// (-e/--env, which also puts the value into the spec) is not recorded at
// all, and the key environment is kept as a digest (EnvDigest).
func SaveReplay(runtimeDir string, s Start, p Replay) error {
	if HasEnvFlag(p.Argv) {
		return errEnvValues
	}
	name := ReplayName(p.Argv, p.Environ, p.Cwd)
	p.Environ = []string{keyDigest(p.Environ)}
	return writeRecord(runtimeDir, name, encode(&s, &p))
}

// startEnviron is the environment devbox started with, as main passed it to
// TryReplay (the CLI changes its own: --log-level).
var startEnviron []string

// Environ is the environment devbox started with (nil before TryReplay or
// Started).
func Environ() []string { return startEnviron }

// Started records the environment the CLI started with, when its front
// has called TryReplay in another process (the CLI changes its own
// environment: --log-level).
func Started(environ []string) { startEnviron = environ }

// TryReplay runs the box of a matching replay record through a holder and
// returns its exit code, or ok false when there is none or it cannot be
// used (nothing has happened then). argv and environ are devbox's.
func TryReplay(argv, environ []string) (code int, ok bool) {
	startEnviron = environ
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if Off() || os.Getenv(Knob) == "noreplay" || len(argv) < 3 || !strings.HasPrefix(rt, "/") || isTerminal(0) || isTerminal(1) || !Private(rt) {
		return 0, false
	}
	cwd, err := os.Getwd()
	if err != nil {
		return 0, false
	}
	env := KeyEnviron(environ, argv)
	s, p, ok := readRecord(Dir(rt) + "/" + ReplayName(argv, env, cwd))
	if !ok || p == nil || !slices.Equal(p.Argv, argv) || !slices.Equal(p.Environ, []string{keyDigest(env)}) || p.Cwd != cwd || len(p.Spec) == 0 {
		return 0, false
	}
	// The directories a replay makes and removes are a fresh box's, never
	// a path the record names otherwise: <store>/containers/{id} and, with
	// a network helper, $XDG_RUNTIME_DIR/devbox/{id16}.
	const boxSuffix = "/containers/" + IDToken
	base, found := strings.CutSuffix(p.BoxDir, boxSuffix)
	if !found || !strings.HasPrefix(base, "/") || dotSegment(base) || strings.Contains(base, IDToken) {
		return 0, false
	}
	if p.HelperExe != "" && p.RunDir != rt+"/devbox/"+ID16Token {
		return 0, false
	}
	for _, g := range p.Guards {
		path, _, _ := strings.Cut(g, "\t")
		if Guard(path) != g {
			return 0, false
		}
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err != nil || string(b) != p.Cgroup {
		return 0, false
	}
	trace.Mark("warm: replaying")
	r := &replay{s: &s, p: p, id: randomID(), boxDir: ""}
	if r.id == "" {
		return 0, false
	}
	r.boxDir = strings.ReplaceAll(p.BoxDir, IDToken, r.id)
	code, ok = r.run(rt)
	trace.Mark("warm: done")
	return code, ok
}

// replay is one replayed run.
type replay struct {
	s      *Start
	p      *Replay
	id     string
	boxDir string
	runDir string
	cg     *boxCgroup
	// ours and theirs hold, per kind of s, devbox's end and the init's.
	ours, theirs []int
}

// run is Replay once the record matched.
func (r *replay) run(rt string) (int, bool) {
	// As devbox run (image/store.RunLock): held until the process ends,
	// taken before the box's directories exist, so that prune leaves them.
	lockPath := dirname(dirname(r.boxDir)) + "/locks/run-" + r.id + ".lock"
	lockFD, err := unix.Open(lockPath, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, false
	}
	defer func() { unix.Unlink(lockPath); unix.Close(lockFD) }()
	if unix.Flock(lockFD, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return 0, false
	}
	if r.p.CgroupBase != "" {
		if r.cg = newBoxCgroup(r.p.CgroupBase, r.id); r.cg == nil {
			return 0, false
		}
	}
	spec := []byte(strings.ReplaceAll(string(r.p.Spec), IDToken, r.id))
	// The record first, as devbox run writes it: image prune keeps the
	// layers a spec.json names.
	if err := saveSpec(r.boxDir, spec); err != nil {
		return r.fail("writing the box spec")
	}
	files, err := r.pipes()
	if err != nil {
		return r.fail("making the init's descriptors")
	}
	// The network helper first: its start (a program of its own) overlaps
	// with the rest. Should no spare take the box, the helper ends when
	// the init's end of the handshake closes (fail).
	if r.p.HelperExe != "" {
		r.runDir = strings.ReplaceAll(r.p.RunDir, ID16Token, r.id[:16])
		helperStatus, err := r.startHelper()
		if err != nil {
			return r.fail("starting the network helper: " + err.Error())
		}
		// Never read: the helper's reports fit in the pipe, and the box's
		// exit code says whether its network came up.
		defer unix.Close(helperStatus)
	}
	cgKey := r.p.Cgroup
	if r.cg != nil {
		cgKey = movedKey
	}
	fp := Fingerprint(r.s, cgKey)
	args := make([]string, len(r.s.Args))
	for i, a := range r.s.Args {
		args[i] = strings.ReplaceAll(a, IDToken, r.id)
	}
	h, absent := Request(rt, fp, args, files)
	if h == nil {
		if absent {
			Spawn(rt, r.s, fp)
		}
		return r.fail("no holder")
	}
	for i := range r.theirs {
		unix.Close(r.theirs[i])
		r.theirs[i] = -1
	}
	n := len(r.s.Kinds)
	// fds 3…: [the network handshake,] the status pipe, the spec pipe, the
	// start pipe.
	status, specW, start := r.ours[n-3], r.ours[n-2], r.ours[n-1]
	writeAll(specW, spec)
	unix.Close(specW)
	r.ours[n-2] = -1
	if r.cg != nil && !r.cg.join(h.Pid, r.boxDir) {
		h.Close()
		return r.fail("joining the box's cgroup")
	}
	// Signals from here on reach the command through the init.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sigs {
			_ = unix.Kill(h.Pid, s.(syscall.Signal))
		}
	}()
	_, _ = unix.Write(start, []byte{'\n'}) // a dead init shows in its status
	trace.Mark("warm: started")
	var buf [16]byte
	nr := 0
	for {
		k, err := unix.Read(status, buf[:])
		if err != unix.EINTR {
			nr = k
			break
		}
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(buf[:max(nr, 0)])))
	if err != nil {
		// No code: the init ended without reporting; its status says why.
		ws, ok := h.Wait()
		if !ok {
			ws = syscall.WaitStatus(125 << 8) // the holder is gone too
		}
		code = ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	trace.Mark("warm: exit code received")
	if r.cg != nil {
		code = r.cg.finish(code, r.boxDir)
	}
	if r.runDir != "" {
		if code == 125 {
			// As devbox run: the helper's log stays for the reason.
			os.Stderr.WriteString("devbox: the box did not start; the network helper's log is " + r.runDir + "/net.log\n")
		} else {
			os.RemoveAll(r.runDir)
		}
	}
	// The box directory holds spec.json only (its writable layer was in
	// memory): two calls, RemoveAll when there is more.
	os.Remove(r.boxDir + "/spec.json")
	if err := os.Remove(r.boxDir); err != nil && !os.IsNotExist(err) {
		if err := os.RemoveAll(r.boxDir); err != nil {
			os.Stderr.WriteString("devbox: warning: could not remove " + r.boxDir + ": " + err.Error() + " (hint: devbox image prune)\n")
		}
	}
	return code, true
}

// pipes makes the descriptors of the start's kinds and returns what the
// init gets as 0, 1, 2, 3, ….
func (r *replay) pipes() ([]int, error) {
	n := len(r.s.Kinds)
	if n < 3 || r.s.Kinds[n-3] != PipeFromTarget || r.s.Kinds[n-2] != PipeToTarget ||
		(r.p.HelperExe != "") != (n == 4 && r.s.Kinds[0] == SocketToTarget) || n > 4 {
		return nil, unix.EINVAL
	}
	files := []int{0, 1, 2}
	for _, k := range r.s.Kinds {
		var p [2]int
		if k == SocketToTarget {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return nil, err
			}
			r.ours, r.theirs = append(r.ours, fds[0]), append(r.theirs, fds[1])
			if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
				return nil, err
			}
		} else {
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				return nil, err
			}
			if k == PipeToTarget {
				p[0], p[1] = p[1], p[0]
			}
			r.ours, r.theirs = append(r.ours, p[0]), append(r.theirs, p[1])
		}
		files = append(files, r.theirs[len(r.theirs)-1])
	}
	return files, nil
}

// fail undoes a replay that has not started its box and leaves the run to
// the CLI.
func (r *replay) fail(why string) (int, bool) {
	for _, fd := range append(r.ours, r.theirs...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	if r.runDir != "" {
		os.RemoveAll(r.runDir)
	}
	if r.cg != nil {
		os.Remove(r.boxDir + "/" + recordFile)
		r.cg.remove()
	}
	os.Remove(r.boxDir + "/spec.json")
	os.Remove(r.boxDir)
	trace.Mark("warm: replay abandoned: " + why)
	return 0, false
}

// startHelper starts the network helper of a replayed run, as devbox run
// does (network/host.Prepare): in a session of its own, its options on
// stdin, its log in the box's runtime directory, the handshake socket on
// fd 3 and a status pipe on fd 4, whose read end it returns.
func (r *replay) startHelper() (int, error) {
	if err := os.Mkdir(r.runDir, 0o700); err != nil {
		return -1, err
	}
	logf, err := os.OpenFile(r.runDir+"/net.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return -1, err
	}
	defer logf.Close()
	var in, st [2]int
	if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
		return -1, err
	}
	if err := unix.Pipe2(st[:], unix.O_CLOEXEC); err != nil {
		unix.Close(in[0])
		unix.Close(in[1])
		return -1, err
	}
	opts := strings.ReplaceAll(strings.ReplaceAll(string(r.p.HelperOptions), IDToken, r.id), ID16Token, r.id[:16])
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "_DEVBOX_") {
			env = append(env, kv)
		}
	}
	env = append(env, "_DEVBOX_STAGE=net")
	lf := logf.Fd()
	_, err = syscall.ForkExec(r.p.HelperExe, r.p.HelperArgs, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{uintptr(in[0]), lf, lf, uintptr(r.ours[0]), uintptr(st[1])},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	unix.Close(in[0])
	unix.Close(st[1])
	unix.Close(r.ours[0])
	r.ours[0] = -1
	if err != nil {
		unix.Close(in[1])
		unix.Close(st[0])
		return -1, err
	}
	writeAll(in[1], []byte(opts))
	unix.Close(in[1])
	return st[0], nil
}

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// dirname is path.Dir for the clean absolute paths of a replay record.
func dirname(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "/"
}

// saveSpec writes a box's spec.json as devbox run does.
func saveSpec(boxDir string, spec []byte) error {
	if err := os.MkdirAll(boxDir, 0o700); err != nil {
		return err
	}
	tmp := boxDir + "/spec.json.tmp"
	if err := os.WriteFile(tmp, spec, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, boxDir+"/spec.json")
}

func writeAll(fd int, b []byte) {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		b = b[n:]
	}
}

// dotSegment reports whether absolute path p has a "." or ".." segment
// (a name that starts with a dot, as .local, is fine).
func dotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
