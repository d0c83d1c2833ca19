// Package warm is devbox run's one warm path: a holder process per user,
// id map and start (internal/holder runs it) keeps spare box inits ready,
// and a run hands one its descriptors instead of cloning a new init and
// waiting for newuidmap and newgidmap. rootless.Start asks the holder
// (Take) and starts one when none listens (Spawn); cmd/devbox's main calls
// TryReplay, which repeats an unchanged finished run without the CLI.
// One description of a start, Start, crosses every boundary as JSON: in a
// replay record, on a holder's stdin and, hashed with what the caller's
// children inherit, in the Fingerprint that names a holder.
// docs/architecture.md, "The warm path", has the protocol.
package warm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"hash/fnv"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/internal/safefile"
	"golang.org/x/sys/unix"
)

// Knob is the environment variable that turns the warm path off ("0").
const Knob = "DEVBOX_WARM"

// Off reports whether the warm path is turned off.
func Off() bool { return os.Getenv(Knob) == "0" }

// IDToken stands for the box id in a recorded start; ID16Token for its
// first 16 characters (the name of the box's runtime directory).
const (
	IDToken   = "{id}"
	ID16Token = "{id16}"
)

// Start is a box init's start as rootless.Start makes it.
type Start struct {
	Exe     string
	Args    []string `json:",omitempty"` // argv, IDToken for the box id
	Env     []string
	Flags   uintptr // clone flags, CLONE_NEWUSER included (the holder's own)
	Setpgid bool
	// The init's fds 3, … are devbox run's: with Handshake first the
	// network handshake (a SOCK_SEQPACKET pair, SO_PASSCRED on the network
	// helper's end), then the status pipe (the init writes), the spec pipe
	// and the start pipe (the init reads).
	Handshake bool
	// UIDMap and GIDMap: newuidmap's (newgidmap's) path and its arguments
	// after the pid, or "-" and the one line of a single-id map.
	UIDMap, GIDMap []string
}

// valid checks a start read from a file or a pipe.
func (s *Start) valid() bool {
	return strings.HasPrefix(s.Exe, "/") && len(s.Args) > 0 && validMap(s.UIDMap) && validMap(s.GIDMap) &&
		(s.UIDMap[0] == "-") == (s.GIDMap[0] == "-")
}

// validMap: a helper's absolute path and its arguments, or "-" and the one
// line a single-id map has.
func validMap(m []string) bool {
	return len(m) > 0 && (m[0] == "-" && len(m) == 2 || strings.HasPrefix(m[0], "/"))
}

// Dir is where the warm path keeps its records and holders' sockets.
func Dir(runtimeDir string) string { return runtimeDir + "/devbox/warm" }

// Private reports whether the warm path may use runtimeDir: the caller's,
// not writable by others, and devbox's directories in it the caller's alone
// (TestEscapeWarmRuntimeDirOfAnotherUser).
func Private(runtimeDir string) bool {
	for i, d := range []string{runtimeDir, runtimeDir + "/devbox", Dir(runtimeDir)} {
		stat, writable := unix.Lstat, uint32(0o077) // devbox's own: never a link
		if i == 0 {
			stat, writable = unix.Stat, 0o022
		}
		var st unix.Stat_t
		if err := stat(d, &st); err != nil {
			return i > 0 && err == unix.ENOENT
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&writable != 0 {
			return false
		}
	}
	return true
}

const maxRecord = 1 << 20 // bounds a record or a holder's configuration

// decode parses a record or a configuration strictly (no unknown field).
func decode(b []byte, v any) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v) == nil && !d.More()
}

// readRecord reads a record the calling user wrote and nobody else can
// change: a regular file (never through a link), bounded.
func readRecord(path string) (*Replay, bool) {
	f, err := safefile.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var st unix.Stat_t
	var p Replay
	if unix.Fstat(int(f.Fd()), &st) != nil || int(st.Uid) != os.Getuid() || st.Mode&0o022 != 0 {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	return &p, err == nil && len(b) <= maxRecord && decode(b, &p)
}

// Fingerprint is a digest of s (the exe's state for its path, without the
// arguments, which come with each request) and of everything the init
// inherits from the calling process, its cgroup too unless the init is
// moved into its box's; "" when that cannot be read.
func Fingerprint(s *Start, moved bool) string {
	if moved {
		return fingerprint(s, movedKey)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	return fingerprint(s, string(b))
}

func fingerprint(s *Start, cgroup string) string {
	f := *s
	f.Exe, f.Args = s.Exe+"\t"+state(s.Exe), nil
	b, _ := json.Marshal(&f)
	return digest(string(b), cgroup, inherited())
}

// inherited describes what a child inherits from the calling process: its
// namespaces, umask, ids, capabilities, no_new_privs, seccomp, affinity,
// limits, OOM score, security label and nice value.
func inherited() string {
	var b strings.Builder
	for _, ns := range []string{"mnt", "net", "uts", "ipc", "pid", "user", "cgroup", "time"} {
		l, _ := os.Readlink("/proc/self/ns/" + ns)
		b.WriteString("ns=" + l + "\n")
	}
	st, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(st), "\n") {
		if k, _, _ := strings.Cut(line, ":"); slices.Contains(statusKeys, k) {
			b.WriteString("status=" + line + "\n")
		}
	}
	for _, f := range []string{"limits", "oom_score_adj", "attr/current"} {
		v, _ := os.ReadFile("/proc/self/" + f)
		b.WriteString(f + "=" + string(v) + "\n")
	}
	prio, _ := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	return b.String() + "prio=" + strconv.Itoa(prio) + "\n"
}

// statusKeys are the /proc/self/status fields a child inherits.
var statusKeys = []string{"Umask", "Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "Seccomp_filters",
	"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Cpus_allowed_list", "Mems_allowed_list"}

// movedKey stands for the caller's cgroup when the init is moved into its
// box's: one holder then serves callers in any cgroup (each terminal tab
// of a desktop is a scope of its own).
const movedKey = "moved into the box's cgroup"

// Paths are the socket and lock file of the holder for fingerprint fp
// (256 buckets).
func Paths(runtimeDir, fp string) (sock, lock string) {
	n := Dir(runtimeDir) + "/h-" + fp[:min(2, len(fp))]
	return n + ".sock", n + ".lock"
}

// state is file's identity and state as one line: "dev:ino:size:mtime:mode",
// or "-" when it does not exist.
func state(file string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		return "-"
	}
	return strconv.FormatUint(st.Dev, 16) + ":" + strconv.FormatUint(st.Ino, 16) + ":" + strconv.FormatInt(st.Size, 10) + ":" +
		strconv.FormatInt(st.Mtim.Sec, 10) + "." + strconv.FormatInt(st.Mtim.Nsec, 10) + ":" + strconv.FormatUint(uint64(st.Mode), 8)
}

// AllCaps lists every capability the kernel knows, for ambient sets.
func AllCaps() []uintptr {
	last := uintptr(unix.CAP_LAST_CAP)
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 && n < 64 {
			last = uintptr(n)
		}
	}
	caps := make([]uintptr, 0, last+1)
	for c := uintptr(0); c <= last; c++ {
		caps = append(caps, c)
	}
	return caps
}

// digest is 128 bits of FNV-1a over parts, NUL after each, in hex: not a
// cryptographic hash, it only matches what the user's own processes wrote.
func digest(parts ...string) string {
	h := fnv.New128a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// randomID is a fresh box id, as runtime.NewID makes them.
func randomID() string {
	var b [16]byte
	if n, err := unix.Getrandom(b[:], 0); err != nil || n != len(b) {
		return ""
	}
	return hex.EncodeToString(b[:])
}
