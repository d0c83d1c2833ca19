// Package prestart starts the box init of `devbox run` while the CLI is
// still initialising its packages, and replays whole runs.
//
// A run spends its first milliseconds in the Go runtime and in package
// initialisation of the CLI, then clones the init and waits for
// newuidmap/newgidmap. Both are independent of the image and command, so
// when a run starts with the same flags as an earlier one, this package
// repeats that start from a recipe the earlier run left in the runtime
// directory, during package initialisation, on another thread while the
// CLI goes on. It imports only syscall, unsafe, os, os/signal and
// internal/trace, so it initialises right after those, before any of the
// CLI's heavier packages (TestPrestartInitialisesEarly).
//
// The recipe is only a guess. The CLI later computes the start it needs as
// always; rootless adopts the early process only when path, arguments,
// environment, clone flags, descriptors and id maps are identical, and
// otherwise discards it (kills it: it has not done anything yet) and
// clones a new one. A stale or foreign recipe costs time, never
// correctness. A run repeated exactly is replayed without the CLI
// (replay.go). DEVBOX_PRESTART=0 turns both off.
package prestart

import (
	"strconv"
	"syscall"
	"unsafe"

	"github.com/devbox-dev/devbox/internal/trace"
)

// Kinds of descriptors a recipe passes to the target as fd 3, 4, …: one
// end of a fresh pipe goes to the target, the other stays with the CLI.
const (
	PipeToTarget   = "r" // the target reads (the CLI keeps the write end)
	PipeFromTarget = "w" // the target writes (the CLI keeps the read end)
	// SocketToTarget is one end of a SOCK_SEQPACKET pair with SO_PASSCRED on
	// the other: the network handshake, whose other end goes to the network
	// helper. Only replay records use it.
	SocketToTarget = "s"
)

// IDToken stands for the box id in a recipe's arguments; each early start
// draws a fresh id.
const IDToken = "{id}"

// Recipe is how an earlier run started its init.
type Recipe struct {
	Prefix  []string // os.Args[1:k]: the flags before the image
	TTY     string   // isatty(0) and isatty(1), "00".."11"
	Exe     string
	Args    []string // argv, IDToken for the box id
	Env     []string
	Flags   uintptr // clone flags
	Setpgid bool
	Kinds   []string // of fds 3…; the last is the start pipe (PipeToTarget)
	UIDMap  []string // newuidmap path, then its arguments after the pid; or "-" and a single-id map line
	GIDMap  []string
	// Join is the cgroup (a group path) in which the run that left the
	// recipe moved its init into its box's cgroup: the common ancestor
	// whose cgroup.procs permits the move. "" when its box had no cgroup.
	Join   string
	Replay *Replay // the rest of the run, in a replay record
}

// Launch is an init started early, waiting on its start pipe.
type Launch struct {
	Recipe Recipe
	ID     string
	Pid    int
	Args   []string // argv as executed (IDToken replaced)
	// Target and Parent hold, per recipe fd kind, the target's end and the
	// CLI's end of its pipe. The last pair is the start pipe.
	Target, Parent []int
	// UIDPid and GIDPid are the running newuidmap and newgidmap.
	UIDPid, GIDPid int
	direct         bool // a single-id map, written by start
	held           bool // a holder's spare (viaHolder): not our child
	conn           int  // with held: the connection to the holder
	specSaved      bool // a replay's spec.json is written
	handed         bool // all pipes but the start pipe belong to the caller
	done           bool // discarded or adopted
}

// Usable reports whether the start was neither discarded nor adopted.
func (l *Launch) Usable() bool { return !l.done }

// Adopted marks the start as taken over by the caller, who now owns the
// process and the CLI's end of the start pipe.
func (l *Launch) Adopted() { l.done = true }

// HandOver gives the caller the pipes of fds 3… except the start pipe:
// the target's and the CLI's end of each. Discard leaves them open then.
func (l *Launch) HandOver() (target, parent []int) {
	l.handed = true
	n := len(l.Recipe.Kinds) - 1
	return l.Target[:n], l.Parent[:n]
}

var (
	early   *Launch
	started chan struct{} // closed when early is set; nil: no early start
)

// Take returns the early start, once, or nil.
func Take() *Launch {
	if started == nil {
		return nil
	}
	<-started
	started = nil
	l := early
	early = nil
	return l
}

// Dir is where recipes live under the runtime directory.
func Dir(runtimeDir string) string { return runtimeDir + "/devbox/prestart" }

// environ is the environment devbox started with (the CLI changes its own).
var environ []string

// Environ returns the environment devbox started with.
func Environ() []string { return environ }

func init() {
	if getenv("_DEVBOX_STAGE") != "" {
		return
	}
	environ = syscall.Environ()
	trace.Mark("prestart: init")
	if getenv("DEVBOX_PRESTART") == "0" {
		return
	}
	rt := getenv("XDG_RUNTIME_DIR")
	if rt == "" || rt[0] != '/' {
		return
	}
	args := cmdline()
	if len(args) < 3 {
		return
	}
	tty := TTYState()
	dir := Dir(rt) + "/"
	tryReplay(dir, args, tty)
	// The longest prefix with a recipe: the most specific earlier run.
	for k := min(len(args)-1, 24); k >= 2; k-- {
		r, ok := readRecipe(dir + Name(args[1:k]))
		if !ok || !equal(r.Prefix, args[1:k]) || r.TTY != tty || traces(r.Env) != trace.On() || hasKind(r.Kinds, SocketToTarget) {
			continue
		}
		if r.Join != "" && !mayJoin(r.Join) {
			return // an init started here could not join the box's cgroup
		}
		// On another thread: the clone waits for the exec, and the
		// helpers need the pid, while this one goes on initialising the
		// CLI. The runtime never ends that thread (the goroutine is not
		// locked to it), so the parent-death signal stays armed.
		started = make(chan struct{})
		go func() {
			early = startEarly(r, dir)
			close(started)
		}()
		return
	}
}

// traces reports whether an init with environment env prints trace
// lines: a start that would be discarded must not print anything.
func traces(env []string) bool {
	for _, kv := range env {
		if len(kv) > len(trace.Env)+1 && kv[:len(trace.Env)+1] == trace.Env+"=" {
			return true
		}
	}
	return false
}

// TTYState is "XY": X is 1 when stdin is a terminal, Y when stdout is.
func TTYState() string {
	b := []byte("00")
	for fd := 0; fd < 2; fd++ {
		var t syscall.Termios
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e == 0 {
			b[fd] = '1'
		}
	}
	return string(b)
}

// Name is the file name of the recipe for prefix. Names are buckets of an
// FNV-1a hash, so that the directory stays small however many different
// flags are used; a recipe names its prefix in full, and a bucket holds
// the latest one.
func Name(prefix []string) string { return "p-" + bucket(hash(prefix), 256) }

// bucket is h modulo n (at most 256), as two hex digits.
func bucket(h, n uint64) string {
	// FNV's low bits mix poorly: a finaliser first (MurmurHash3's).
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	s := strconv.FormatUint(h%n, 16)
	if len(s) < 2 {
		s = "0" + s
	}
	return s
}

func hash(ss []string) uint64 {
	h := uint64(14695981039346656037)
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h *= 1099511628211 // a separator: ["ab"] and ["a", "b"] differ
	}
	return h
}

// prepare makes the descriptors of r's start with box id id: l with its
// pipes, and the descriptors the init gets as 0, 1, 2, 3, ….
func prepare(r Recipe, id string) (*Launch, []uintptr) {
	n := len(r.Kinds)
	if n == 0 || r.Kinds[n-1] != PipeToTarget || len(r.UIDMap) == 0 || len(r.GIDMap) == 0 {
		return nil, nil
	}
	l := &Launch{Recipe: r, ID: id, Target: make([]int, n), Parent: make([]int, n), UIDPid: -1, GIDPid: -1}
	if l.ID == "" {
		return nil, nil
	}
	files := []uintptr{0, 1, 2}
	for i, k := range r.Kinds {
		var p [2]int
		if k == SocketToTarget {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
			if err != nil || syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1) != nil {
				if err == nil {
					syscall.Close(fds[0])
					syscall.Close(fds[1])
				}
				l.closeFrom(i)
				return nil, nil
			}
			l.Parent[i], l.Target[i] = fds[0], fds[1]
			files = append(files, uintptr(l.Target[i]))
			continue
		}
		if syscall.Pipe2(p[:], syscall.O_CLOEXEC) != nil {
			l.closeFrom(i)
			return nil, nil
		}
		if k == PipeToTarget {
			l.Target[i], l.Parent[i] = p[0], p[1]
		} else {
			l.Target[i], l.Parent[i] = p[1], p[0]
		}
		files = append(files, uintptr(l.Target[i]))
	}
	l.Args = make([]string, len(r.Args))
	for i, a := range r.Args {
		l.Args[i] = replace(a, IDToken, l.ID)
	}
	return l, files
}

func start(r Recipe, id string) *Launch {
	l, files := prepare(r, id)
	if l == nil {
		return nil
	}
	n := len(r.Kinds)
	pid, err := syscall.ForkExec(r.Exe, l.Args, &syscall.ProcAttr{
		Env:   r.Env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			// No id maps written by Go: the parent is not held up, and a
			// shared address space spares copying the CLI's page tables.
			Cloneflags:  r.Flags | syscall.CLONE_VM | syscall.CLONE_VFORK,
			Pdeathsig:   syscall.SIGKILL, // the main thread forks: it lives as long as the CLI
			Setpgid:     r.Setpgid,
			AmbientCaps: AllCaps(),
		},
	})
	if err != nil {
		l.closeFrom(n)
		return nil
	}
	l.Pid = pid
	ps := strconv.Itoa(pid)
	if r.UIDMap[0] == "-" {
		l.direct = writeDirectMaps("/proc/"+ps+"/", r.UIDMap[1], r.GIDMap[1])
		return l
	}
	l.UIDPid = helper(r.UIDMap, ps)
	l.GIDPid = helper(r.GIDMap, ps)
	return l
}

// writeDirectMaps writes a single-id map (the caller's own ids) into the
// user namespace whose process directory is proc, as its creator may.
func writeDirectMaps(proc, uidLine, gidLine string) bool {
	for _, f := range [][2]string{{"setgroups", "deny"}, {"uid_map", uidLine + "\n"}, {"gid_map", gidLine + "\n"}} {
		fd, err := syscall.Open(proc+f[0], syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		n, err := syscall.Write(fd, []byte(f[1]))
		syscall.Close(fd)
		if err != nil || n != len(f[1]) {
			return false
		}
	}
	return true
}

// helper starts newuidmap or newgidmap for pid, output discarded (a
// failure only means the early start is discarded; the CLI then reports
// the helper's error from its own start).
func helper(argv []string, pid string) int {
	null, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	defer syscall.Close(null)
	args := append([]string{argv[0], pid}, argv[1:]...)
	p, err := syscall.ForkExec(argv[0], args, &syscall.ProcAttr{
		Env:   []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Files: []uintptr{uintptr(null), uintptr(null), uintptr(null)},
	})
	if err != nil {
		return -1
	}
	return p
}

// MapsWritten waits for newuidmap and newgidmap and reports whether both
// succeeded.
func (l *Launch) MapsWritten() bool {
	if l.held {
		return true // the holder's namespace has them
	}
	if l.Recipe.UIDMap[0] == "-" {
		return l.direct
	}
	ok := true
	for _, p := range []int{l.UIDPid, l.GIDPid} {
		if p <= 0 {
			ok = false
			continue
		}
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(p, &ws, 0, nil)
			if err != syscall.EINTR {
				if err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
					ok = false
				}
				break
			}
		}
	}
	l.UIDPid, l.GIDPid = -1, -1
	return ok
}

// Discard abandons the early start: the init, which has not started
// anything yet (it waits for its start byte or its spec), is killed, so
// that the pipes the caller took over reach only their next owner; the
// helpers and the init are reaped.
func (l *Launch) Discard() {
	if l.done {
		return
	}
	l.done = true
	l.MapsWritten()
	n := len(l.Recipe.Kinds)
	if l.handed {
		syscall.Close(l.Target[n-1])
		syscall.Close(l.Parent[n-1])
	} else {
		l.closeFrom(n)
	}
	syscall.Kill(l.Pid, syscall.SIGKILL)
	if l.held {
		syscall.Close(l.conn) // the holder reaps it
		return
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(l.Pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
}

func (l *Launch) closeFrom(n int) {
	for i := 0; i < n; i++ {
		syscall.Close(l.Target[i])
		syscall.Close(l.Parent[i])
		l.Target[i], l.Parent[i] = -1, -1
	}
}

// AllCaps lists every capability the kernel knows, for ambient sets.
func AllCaps() []uintptr {
	last := 40
	if b, ok := readFile("/proc/sys/kernel/cap_last_cap", 16); ok {
		n := 0
		for _, c := range b {
			if c >= '0' && c <= '9' {
				n = n*10 + int(c-'0')
			}
		}
		if n > 0 && n < 64 {
			last = n
		}
	}
	caps := make([]uintptr, 0, last+1)
	for c := 0; c <= last; c++ {
		caps = append(caps, uintptr(c))
	}
	return caps
}

func randomID() string {
	var b [16]byte
	fd, err := syscall.Open("/dev/urandom", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	n, err := syscall.Read(fd, b[:])
	syscall.Close(fd)
	if err != nil || n != len(b) {
		return ""
	}
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 32)
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func cmdline() []string {
	b, ok := readFile("/proc/self/cmdline", 1<<16)
	if !ok {
		return nil
	}
	var args []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		args = append(args, string(b[:i]))
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return args
}

// readFile reads at most max bytes of path.
func readFile(path string, max int) ([]byte, bool) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 4096)
	for len(buf) < max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, false
		}
		if n == 0 {
			return buf, true
		}
		buf = buf[:len(buf)+n]
	}
	return nil, false
}

func getenv(k string) string {
	v, _ := syscall.Getenv(k)
	return v
}

func hasKind(kinds []string, k string) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func replace(s, old, new string) string {
	out := ""
	for {
		i := index(s, old)
		if i < 0 {
			return out + s
		}
		out += s[:i] + new
		s = s[i+len(old):]
	}
}

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
