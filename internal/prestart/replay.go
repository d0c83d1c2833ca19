package prestart

import (
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/devbox-dev/devbox/internal/trace"
)

// (No package strings here: it waits for package unicode, which
// initialises after the CLI's third-party packages; see the package doc.)

// A replay record lets a later `devbox run` with exactly the same command
// line, environment (KeyEnviron), working directory and inputs skip the
// CLI: package initialisation starts the init from the record's recipe
// (and the network helper, with a user-mode network), sends it the spec
// the earlier run computed (with a fresh box id), forwards signals, passes
// the exit code on and removes the box directory, all before the CLI's
// own packages initialise. Only ephemeral, non-terminal runs without
// published ports, limits or pull qualify (the CLI decides, see
// cmd/run), and a record is used only while every file the earlier run's
// result depended on (the config file, the store's index, the image's
// layers, /etc/subuid and friends, devbox itself) is unchanged, down to
// inode, size and modification time, and /proc/self/cgroup reads the
// same. Anything else, or any failure before the spec is sent, leaves the
// run to the CLI.

// Replay is what a run records besides its Recipe.
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

// ID16Token stands for the first 16 characters of the box id (the name of
// the box's runtime directory).
const ID16Token = "{id16}"

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
		name := kv
		if i := index(kv, "="); i >= 0 {
			name = kv[:i]
		}
		if KeyVar(name, argv) {
			out = append(out, kv)
		}
	}
	// Insertion sort: a few entries, and package sort would initialise
	// after the CLI's third-party packages (see the package doc).
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
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
		if name != "" && index(a, name) >= 0 {
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
		case len(a) > 1 && a[0] == '-' && a[1] != '-' && index(a, "e") >= 0:
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

// Guard describes path's current state as one line: "path\tdev:ino:size:
// mtime:mode", or "path\t-" when it does not exist.
func Guard(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return path + "\t-"
	}
	return path + "\t" + strconv.FormatUint(st.Dev, 16) + ":" + strconv.FormatUint(st.Ino, 16) + ":" +
		strconv.FormatInt(st.Size, 10) + ":" + strconv.FormatInt(st.Mtim.Sec, 10) + "." +
		strconv.FormatInt(st.Mtim.Nsec, 10) + ":" + strconv.FormatUint(uint64(st.Mode), 8)
}

// SaveReplay writes the record of a run (r keyed by its full command line).
func SaveReplay(runtimeDir string, r Recipe, p Replay) error {
	r.Replay = &p
	return save(runtimeDir, ReplayName(p.Argv, p.Environ, p.Cwd), r)
}

// tryReplay runs the box of a matching replay record and exits, or returns
// when there is none or it cannot be used.
func tryReplay(dir string, args []string, tty string) {
	if tty != "00" {
		return
	}
	cwd, err := syscall.Getwd()
	if err != nil {
		return
	}
	env := KeyEnviron(environ, args)
	r, ok := readRecipe(dir + ReplayName(args, env, cwd))
	if !ok || r.Replay == nil {
		return
	}
	p := r.Replay
	if !equal(p.Argv, args) || !equal(p.Environ, []string{keyDigest(env)}) || p.Cwd != cwd || r.TTY != tty || len(p.Spec) == 0 {
		return
	}
	// The directories a replay makes and removes are a fresh box's, never
	// a path the record names otherwise: <store>/containers/{id} and, with
	// a network helper, $XDG_RUNTIME_DIR/devbox/{id16} (dir is its
	// prestart/ subdirectory).
	const boxSuffix = "/containers/" + IDToken
	if len(p.BoxDir) <= len(boxSuffix) || p.BoxDir[0] != '/' || p.BoxDir[len(p.BoxDir)-len(boxSuffix):] != boxSuffix ||
		dotSegment(p.BoxDir) || index(p.BoxDir[:len(p.BoxDir)-len(boxSuffix)], IDToken) >= 0 {
		return
	}
	if p.HelperExe != "" && p.RunDir != dir[:len(dir)-len("prestart/")]+ID16Token {
		return
	}
	for _, g := range p.Guards {
		path := g
		if i := index(g, "\t"); i >= 0 {
			path = g[:i]
		}
		if Guard(path) != g {
			return
		}
	}
	if b, ok := readFile("/proc/self/cgroup", 1<<16); !ok || string(b) != p.Cgroup {
		return
	}
	trace.Mark("prestart: replaying")
	// A warm holder's spare when there is one (holder.go); else a clone,
	// and a holder for the next run. For a spare, the box's record
	// (spec.json, which devbox run writes before the box starts: image
	// prune keeps the layers it names) first: the spare waits for nothing
	// else once it has its descriptors.
	id := randomID()
	if id == "" {
		return
	}
	var l *Launch
	spawn, saved := false, false
	boxDir := replace(p.BoxDir, IDToken, id)
	// As devbox run (image/store.RunLock): held until the process ends,
	// taken before the box's directories exist, so that prune leaves them.
	lockPath := dirname(dirname(boxDir)) + "/locks/run-" + id + ".lock"
	lockFD, err := syscall.Open(lockPath, syscall.O_RDWR|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	if syscall.Flock(lockFD, syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		syscall.Close(lockFD)
		return
	}
	defer func() { syscall.Unlink(lockPath); syscall.Close(lockFD) }()
	var cg *boxCgroup
	if p.CgroupBase != "" {
		if cg = newBoxCgroup(p.CgroupBase, id); cg == nil {
			return
		}
	}
	var fp, sock, lock string
	if !holderOff() {
		fp = Fingerprint(&r, p.Cgroup)
		sock, lock = HolderPaths(dir, fp)
		if saved = saveSpec(boxDir, []byte(replace(string(p.Spec), IDToken, id))) == nil; !saved {
			if cg != nil {
				cg.remove()
			}
			return
		}
		l, spawn = viaHolder(r, sock, fp, id)
	}
	if l == nil {
		l = start(r, id)
	}
	if l == nil {
		if saved {
			os.Remove(boxDir + "/spec.json")
			os.Remove(boxDir)
		}
		if cg != nil {
			cg.remove()
		}
		return
	}
	l.specSaved = saved
	if code, ok := l.replay(cg); ok {
		syscall.Unlink(lockPath)
		if spawn {
			spawnHolder(r, sock, lock, fp)
		}
		os.Exit(code)
	}
}

// dirname is path.Dir for the clean absolute paths of a replay record.
func dirname(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}

// saveSpec writes a box's spec.json as devbox run does.
func saveSpec(boxDir string, spec []byte) error {
	if err := os.MkdirAll(boxDir, 0o700); err != nil {
		return err
	}
	return writeAtomic(boxDir+"/spec.json", spec)
}

// replay finishes the run of l: the spec goes to the init at once, the
// start byte once the maps are written; then signals are forwarded and the
// exit code comes back. Until the start byte, a failure (a helper gone
// missing, an unwritable store) undoes everything and returns false: the
// CLI then runs as always and reports it its own way. cg, when not nil,
// is the box's cgroup: the init joins it before the start byte.
func (l *Launch) replay(cg *boxCgroup) (code int, ok bool) {
	p := l.Recipe.Replay
	n := len(l.Recipe.Kinds)
	boxDir := replace(p.BoxDir, IDToken, l.ID)
	spec := []byte(replace(string(p.Spec), IDToken, l.ID))
	runDir := ""
	fail := func(why string) (int, bool) {
		l.Discard()
		if runDir != "" {
			os.RemoveAll(runDir)
		}
		if cg != nil {
			os.Remove(boxDir + "/" + recordFile)
			cg.remove()
		}
		os.Remove(boxDir + "/spec.json")
		os.Remove(boxDir)
		trace.Mark("prestart: replay abandoned: " + why)
		return 0, false
	}
	if n < 3 || l.Recipe.Kinds[n-3] != PipeFromTarget || l.Recipe.Kinds[n-2] != PipeToTarget {
		return fail("unexpected descriptors")
	}
	// fds 3…: [the network handshake,] the status pipe, the spec pipe, the
	// start pipe.
	status, specW, start := l.Parent[n-3], l.Parent[n-2], l.Parent[n-1]
	// The init reads (and decodes) its spec while newuidmap and newgidmap
	// run; it waits for the start byte before it uses it.
	writeAll(specW, spec)
	syscall.Close(specW)
	l.Parent[n-2] = -1
	if p.HelperExe != "" {
		if n != 4 || l.Recipe.Kinds[0] != SocketToTarget {
			return fail("unexpected descriptors")
		}
		runDir = replace(p.RunDir, ID16Token, l.ID[:16])
		helperStatus, err := l.startHelper(p, runDir)
		if err != nil {
			return fail("starting the network helper: " + err.Error())
		}
		// Never read: the helper's reports fit in the pipe, and the box's
		// exit code says whether its network came up.
		defer syscall.Close(helperStatus)
	}
	// The record before the start byte, as devbox run writes it: image
	// prune keeps the layers a spec.json names.
	if !l.specSaved {
		if err := saveSpec(boxDir, spec); err != nil {
			return fail("writing the box spec")
		}
	}
	if !l.MapsWritten() {
		return fail("newuidmap or newgidmap failed")
	}
	if cg != nil && !cg.join(l.Pid, boxDir) {
		return fail("joining the box's cgroup")
	}
	// Signals from here on reach the command through the init. Notify
	// waits for the runtime to start a thread, so not on the way to the
	// start byte: a signal in the first moments of the command ends
	// devbox, and the box with it (as one before the start would).
	go func() {
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		for s := range sigs {
			syscall.Kill(l.Pid, s.(syscall.Signal))
		}
	}()
	l.done = true
	for i := 0; i < n; i++ {
		syscall.Close(l.Target[i])
	}
	syscall.Write(start, []byte{'\n'}) // a dead init shows in its status
	trace.Mark("prestart: started")
	var buf [16]byte
	nr := 0
	for {
		k, err := syscall.Read(status, buf[:])
		if err == syscall.EINTR {
			continue
		}
		nr = k
		break
	}
	code, err := strconv.Atoi(trimSpace(string(buf[:max(nr, 0)])))
	if err != nil {
		// No code: the init ended without reporting; its status says why.
		var ws syscall.WaitStatus
		if l.held {
			var ok bool
			if ws, ok = l.HeldWait(); !ok {
				ws = syscall.WaitStatus(125 << 8) // the holder is gone too
			}
		}
		for !l.held {
			if _, err := syscall.Wait4(l.Pid, &ws, 0, nil); err != syscall.EINTR {
				break
			}
		}
		code = ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	// No signal.Stop: it waits a scheduling round, and the process exits.
	trace.Mark("prestart: exit code received")
	if cg != nil {
		code = cg.finish(code, boxDir)
	}
	if runDir != "" {
		if code == 125 {
			// As devbox run: the helper's log stays for the reason.
			os.Stderr.WriteString("devbox: the box did not start; the network helper's log is " + runDir + "/net.log\n")
		} else {
			os.RemoveAll(runDir)
		}
	}
	// The box directory holds spec.json only (its writable layer was in
	// memory): two calls, RemoveAll when there is more.
	os.Remove(boxDir + "/spec.json")
	if err := os.Remove(boxDir); err != nil && !os.IsNotExist(err) {
		if err := os.RemoveAll(boxDir); err != nil {
			os.Stderr.WriteString("devbox: warning: could not remove " + boxDir + ": " + err.Error() + " (hint: devbox image prune)\n")
		}
	}
	trace.Mark("prestart: done")
	return code, true
}

// startHelper starts the network helper of a replayed run, as devbox run
// does (network/host.Prepare): in a session of its own, its options on
// stdin, its log in the box's runtime directory, the handshake socket on
// fd 3 and a status pipe on fd 4, whose read end it returns.
func (l *Launch) startHelper(p *Replay, runDir string) (int, error) {
	if err := os.Mkdir(runDir, 0o700); err != nil {
		return -1, err
	}
	logf, err := os.OpenFile(runDir+"/net.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return -1, err
	}
	defer logf.Close()
	var in, st [2]int
	if err := syscall.Pipe2(in[:], syscall.O_CLOEXEC); err != nil {
		return -1, err
	}
	if err := syscall.Pipe2(st[:], syscall.O_CLOEXEC); err != nil {
		syscall.Close(in[0])
		syscall.Close(in[1])
		return -1, err
	}
	opts := replace(replace(string(p.HelperOptions), IDToken, l.ID), ID16Token, l.ID[:16])
	var env []string
	for _, kv := range environ {
		if len(kv) < 8 || kv[:8] != "_DEVBOX_" {
			env = append(env, kv)
		}
	}
	env = append(env, "_DEVBOX_STAGE=net")
	lf := logf.Fd()
	_, err = syscall.ForkExec(p.HelperExe, p.HelperArgs, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{uintptr(in[0]), lf, lf, uintptr(l.Parent[0]), uintptr(st[1])},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	syscall.Close(in[0])
	syscall.Close(st[1])
	syscall.Close(l.Parent[0])
	l.Parent[0] = -1
	if err != nil {
		syscall.Close(in[1])
		syscall.Close(st[0])
		return -1, err
	}
	writeAll(in[1], []byte(opts))
	syscall.Close(in[1])
	return st[0], nil
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\n' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\n' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func writeAll(fd int, b []byte) {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		b = b[n:]
	}
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// dotSegment reports whether absolute path p has a "." or ".." segment
// (a name that starts with a dot, as .local, is fine).
func dotSegment(p string) bool {
	for i := 0; i < len(p); {
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		if seg := p[i+1 : j]; seg == "." || seg == ".." {
			return true
		}
		i = j
	}
	return false
}
