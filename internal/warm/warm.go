// Package warm is devbox run's one warm path: a holder process per user,
// id map and start (internal/holder runs it) keeps spare box inits ready,
// and a run hands one its descriptors instead of cloning a new init and
// waiting for newuidmap and newgidmap.
//
// Everything here is ordinary code called by name: rootless.Start asks the
// holder (Request) when the caller allows it (rootless.Spec.Warm) and
// starts one for the next run when none listens (Spawn); cmd/devbox's main
// calls TryReplay before the CLI parses anything, which repeats a finished
// run whose command line, environment, directory and inputs are unchanged
// through the holder, without the CLI (replay.go). Nothing runs from a
// package's initialisation.
//
// A spare inherits from the holder what a cloned init inherits from
// devbox, so a holder serves only starts whose Fingerprint (the Start, the
// init binary's identity, and every attribute of the calling process a
// child inherits) is the one it was started for; its socket is named
// after it. DEVBOX_WARM=0 turns the warm path off; DEVBOX_WARM=noreplay
// only the replay (the benchmark uses it).
package warm

import (
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Knob is the environment variable that turns the warm path off ("0").
const Knob = "DEVBOX_WARM"

// Off reports whether the warm path is turned off.
func Off() bool { return os.Getenv(Knob) == "0" }

// Kinds of the descriptors an init gets as fd 3, 4, …: one end of a fresh
// pipe or socket pair goes to the init, the other stays with devbox.
const (
	PipeToTarget   = "r" // the init reads (devbox keeps the write end)
	PipeFromTarget = "w" // the init writes (devbox keeps the read end)
	// SocketToTarget is one end of a SOCK_SEQPACKET pair with SO_PASSCRED
	// on the other: the network handshake, whose other end goes to the
	// network helper.
	SocketToTarget = "s"
)

// IDToken stands for the box id in a recorded start; ID16Token for its
// first 16 characters (the name of the box's runtime directory).
const (
	IDToken   = "{id}"
	ID16Token = "{id16}"
)

// Start is a box init's start as rootless.Start makes it: what a holder
// needs to make spares for it, and what a replay needs to repeat it.
type Start struct {
	Exe     string
	Args    []string // argv, IDToken for the box id
	Env     []string
	Flags   uintptr // clone flags, CLONE_NEWUSER included (the holder's own)
	Setpgid bool
	// Kinds are fds 3…; the last is the start pipe (PipeToTarget).
	Kinds []string
	// UIDMap and GIDMap: newuidmap's (newgidmap's) path and its arguments
	// after the pid, or "-" and the one line of a single-id map.
	UIDMap, GIDMap []string
}

const magic = "devbox-warm-1"

// each passes s's fields to add, exe standing for s.Exe and the
// arguments only with args: encode and Fingerprint list them alike.
func (s *Start) each(add func(k string, vs ...string), exe string, args bool) {
	add("exe", exe)
	if args {
		add("arg", s.Args...)
	}
	add("env", s.Env...)
	add("flags", strconv.FormatUint(uint64(s.Flags), 16))
	if s.Setpgid {
		add("setpgid", "1")
	}
	add("fd", s.Kinds...)
	add("uidmap", s.UIDMap...)
	add("gidmap", s.GIDMap...)
}

// maxRecord bounds a record file (a replay holds an environment and a spec).
const maxRecord = 1 << 20

// encode serialises s and, when not nil, p: NUL-terminated key and value
// pairs after a magic line (arguments and environment cannot hold NUL).
func encode(s *Start, p *Replay) []byte {
	var b []byte
	add := func(k string, vs ...string) {
		for _, v := range vs {
			b = append(append(append(append(b, k...), 0), v...), 0)
		}
	}
	b = append(b, magic+"\n"...)
	s.each(add, s.Exe, true)
	if p != nil {
		add("argv", p.Argv...)
		add("environ", p.Environ...)
		add("cwd", p.Cwd)
		add("spec", string(p.Spec))
		add("boxdir", p.BoxDir)
		add("guard", p.Guards...)
		add("cgroup", p.Cgroup)
		if p.CgroupBase != "" {
			add("cgbase", p.CgroupBase)
		}
		if p.HelperExe != "" {
			add("hexe", p.HelperExe)
			add("harg", p.HelperArgs...)
			add("hopts", string(p.HelperOptions))
			add("rundir", p.RunDir)
		}
	}
	return b
}

// decode parses what encode wrote; p is nil when b has no replay part.
func decode(b []byte) (s Start, p *Replay, ok bool) {
	if len(b) < len(magic)+1 || string(b[:len(magic)+1]) != magic+"\n" {
		return s, nil, false
	}
	fields := strings.Split(string(b[len(magic)+1:]), "\x00")
	if len(fields)%2 != 1 || fields[len(fields)-1] != "" {
		return s, nil, false
	}
	rp := func() *Replay {
		if p == nil {
			p = &Replay{}
		}
		return p
	}
	for i := 0; i+1 < len(fields); i += 2 {
		k, v := fields[i], fields[i+1]
		switch k {
		case "exe":
			s.Exe = v
		case "arg":
			s.Args = append(s.Args, v)
		case "env":
			s.Env = append(s.Env, v)
		case "flags":
			f, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return s, nil, false
			}
			s.Flags = uintptr(f)
		case "setpgid":
			s.Setpgid = v == "1"
		case "fd":
			if v != PipeToTarget && v != PipeFromTarget && v != SocketToTarget {
				return s, nil, false
			}
			s.Kinds = append(s.Kinds, v)
		case "uidmap":
			s.UIDMap = append(s.UIDMap, v)
		case "gidmap":
			s.GIDMap = append(s.GIDMap, v)
		case "argv":
			rp().Argv = append(rp().Argv, v)
		case "environ":
			rp().Environ = append(rp().Environ, v)
		case "cwd":
			rp().Cwd = v
		case "spec":
			rp().Spec = []byte(v)
		case "boxdir":
			rp().BoxDir = v
		case "guard":
			rp().Guards = append(rp().Guards, v)
		case "cgroup":
			rp().Cgroup = v
		case "cgbase":
			rp().CgroupBase = v
		case "hexe":
			rp().HelperExe = v
		case "harg":
			rp().HelperArgs = append(rp().HelperArgs, v)
		case "hopts":
			rp().HelperOptions = []byte(v)
		case "rundir":
			rp().RunDir = v
		default:
			return s, nil, false
		}
	}
	n := len(s.Kinds)
	ok = strings.HasPrefix(s.Exe, "/") && len(s.Args) > 0 && n > 0 && s.Kinds[n-1] == PipeToTarget &&
		validMap(s.UIDMap) && validMap(s.GIDMap) && (s.UIDMap[0] == "-") == (s.GIDMap[0] == "-")
	return s, p, ok
}

// validMap: a helper's absolute path and its arguments, or "-" and the one
// line a single-id map has.
func validMap(m []string) bool {
	if len(m) == 0 || m[0] == "" {
		return false
	}
	if m[0] == "-" {
		return len(m) == 2
	}
	return m[0][0] == '/'
}

// Dir is where the warm path keeps its records and holders' sockets.
func Dir(runtimeDir string) string { return runtimeDir + "/devbox/warm" }

// Private reports whether the warm path may use runtimeDir: a directory
// of the caller's that no other user can write, in which devbox's
// directories, where they exist, are the caller's alone. In another
// user's (an XDG_RUNTIME_DIR kept across su), that user could listen on
// the holders' sockets and get the runs' descriptors and specs, or link a
// holder's log to a file of the caller's (TestEscapeWarmRuntimeDirOfAnotherUser).
func Private(runtimeDir string) bool {
	for i, d := range []string{runtimeDir, runtimeDir + "/devbox", Dir(runtimeDir)} {
		var st unix.Stat_t
		var err error
		if i == 0 {
			err = unix.Stat(d, &st)
		} else {
			err = unix.Lstat(d, &st)
		}
		if err != nil {
			return i > 0 && err == unix.ENOENT
		}
		writable := uint32(0o022)
		if i > 0 {
			writable = 0o077
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&writable != 0 {
			return false
		}
	}
	return true
}

// readRecord reads a record the calling user wrote and nobody else can
// change: a regular file (never through a link), bounded.
func readRecord(path string) (Start, *Replay, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return Start{}, nil, false
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Getuid() ||
		st.Mode&0o022 != 0 || st.Size > maxRecord {
		return Start{}, nil, false
	}
	b := make([]byte, st.Size+1)
	n, err := f.Read(b)
	if err != nil || int64(n) != st.Size {
		return Start{}, nil, false
	}
	return decode(b[:n])
}

// errEnvValues refuses to record a start whose command line may carry a
// value of the box's environment.
var errEnvValues = errors.New("the command line sets box environment variables (-e/--env): not recorded")

// errNotPrivate refuses a runtime directory that is not Private.
var errNotPrivate = errors.New("the runtime directory is not a private directory of yours: not recorded")

// writeRecord writes file in Dir(runtimeDir) atomically (0600).
func writeRecord(runtimeDir, file string, b []byte) error {
	if !Private(runtimeDir) {
		return errNotPrivate
	}
	dir := Dir(runtimeDir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	tmp, err := os.CreateTemp(dir, file+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dir+"/"+file)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Fingerprint describes s's start as a holder makes it, and everything the
// init inherits from the calling process (whose /proc/self/cgroup is
// cgroup): the exe's identity, environment, clone flags, descriptors, id
// maps, namespaces, umask, ids, capabilities, no_new_privs, seccomp,
// affinity, limits, OOM score, nice value and security label.
func Fingerprint(s *Start, cgroup string) string {
	var b strings.Builder
	add := func(k string, vs ...string) {
		for _, v := range vs {
			b.WriteString(k + "=" + v + "\n")
		}
	}
	// The arguments (box id, spec descriptor) come with each request.
	s.each(add, Guard(s.Exe), false)
	add("cgroup", cgroup)
	for _, ns := range []string{"mnt", "net", "uts", "ipc", "pid", "user", "cgroup", "time"} {
		l, _ := os.Readlink("/proc/self/ns/" + ns)
		add("ns", l)
	}
	st, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(st), "\n") {
		k, _, _ := strings.Cut(line, ":")
		for _, want := range statusKeys {
			if k == want {
				add("status", line)
			}
		}
	}
	for _, f := range []string{"limits", "oom_score_adj", "attr/current"} {
		v, _ := os.ReadFile("/proc/self/" + f)
		add(f, string(v))
	}
	prio, _ := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	add("prio", strconv.Itoa(prio))
	return b.String()
}

// movedKey stands for the caller's cgroup in a fingerprint when the init
// is moved into a cgroup of its box's own before its start byte: then the
// spare's cgroup does not reach the box, and one holder serves callers in
// any cgroup (each terminal tab of a desktop is a scope of its own).
const movedKey = "moved into the box's cgroup"

// CgroupKey is the cgroup part of a fingerprint: the calling process's
// /proc/self/cgroup, which a spare that stays in its holder's cgroup must
// share, or movedKey when the init is moved into its box's cgroup.
func CgroupKey(moved bool) (string, error) {
	if moved {
		return movedKey, nil
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	return string(b), err
}

// statusKeys are the /proc/self/status fields a child inherits.
var statusKeys = []string{"Umask", "Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "Seccomp_filters",
	"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Cpus_allowed_list", "Mems_allowed_list"}

// Paths are the socket and lock file of the holder for fingerprint fp.
func Paths(runtimeDir, fp string) (sock, lock string) {
	n := Dir(runtimeDir) + "/h-" + bucket(hash([]string{fp}), 256)
	return n + ".sock", n + ".lock"
}

// Guard describes path's current state as one line: "path\tdev:ino:size:
// mtime:mode", or "path\t-" when it does not exist.
func Guard(path string) string { return GuardAs(path, path) }

// GuardAs is Guard of file under the name key: the CLI guards the front
// that started it (internal/self) as /proc/self/exe, which is that front
// when the front checks the guard.
func GuardAs(key, file string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		return key + "\t-"
	}
	return key + "\t" + strconv.FormatUint(st.Dev, 16) + ":" + strconv.FormatUint(st.Ino, 16) + ":" +
		strconv.FormatInt(st.Size, 10) + ":" + strconv.FormatInt(st.Mtim.Sec, 10) + "." +
		strconv.FormatInt(st.Mtim.Nsec, 10) + ":" + strconv.FormatUint(uint64(st.Mode), 8)
}

// AllCaps lists every capability the kernel knows, for ambient sets.
func AllCaps() []uintptr {
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 && n < 64 {
			last = n
		}
	}
	caps := make([]uintptr, 0, last+1)
	for c := 0; c <= last; c++ {
		caps = append(caps, uintptr(c))
	}
	return caps
}

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

// hash is FNV-1a over ss, with a separator between the strings.
func hash(ss []string) uint64 {
	h := uint64(14695981039346656037)
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h *= 1099511628211 // ["ab"] and ["a", "b"] differ
	}
	return h
}

// randomID is a fresh box id, as runtime.NewID makes them.
func randomID() string {
	var b [16]byte
	if n, err := unix.Getrandom(b[:], 0); err != nil || n != len(b) {
		return ""
	}
	return hex.EncodeToString(b[:])
}
