package doctor

import (
	"errors"
	"io/fs"
	"strings"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime/device"
)

// Status is the outcome of one check.
type Status string

// The three outcomes. The JSON form is these strings.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's outcome. Its JSON form is part of devbox's script
// contract (docs/json.md): the field names and Check names are stable.
type Result struct {
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Hint is the exact fix (commands, possibly several lines); empty when
	// there is nothing to do.
	Hint string `json:"hint"`
}

// Host is the part of the machine the checks look at.
type Host interface {
	ReadFile(path string) ([]byte, error)
	// Stat follows symbolic links.
	Stat(path string) (FileInfo, error)
	Getxattr(path, name string) ([]byte, error)
	LookPath(file string) (string, error)
	Statfs(path string) (FSInfo, error)
	// Access is access(2) with R_OK (4), W_OK (2), X_OK (1).
	Access(path string, mode uint32) error
	// Dial connects to a unix socket and closes the connection.
	Dial(socket string) error
}

// FileInfo is what the checks need of a file's metadata.
type FileInfo struct {
	Mode     fs.FileMode
	UID, GID int
}

// FSInfo is what the checks need of a filesystem (statfs(2)).
type FSInfo struct {
	Type  int64  // f_type magic number
	Flags int64  // ST_RDONLY, ST_NOSUID, ST_NOEXEC, …
	Avail uint64 // bytes available to an unprivileged user
}

// Mount flags reported by statfs(2) in f_flags.
const (
	stRdonly = 0x1
	stNosuid = 0x2
	stNoexec = 0x8
)

// Filesystem magic numbers (linux/magic.h).
const (
	magicCgroup2  = 0x63677270
	magicCgroup   = 0x27e0eb
	magicTmpfs    = 0x01021994
	magicNFS      = 0x6969
	magicSMB2     = 0xfe534d42
	magicCIFS     = 0xff534d42
	magicFUSE     = 0x65735546
	magicEcryptfs = 0xf15f
	magicOverlay  = 0x794c7630
)

// Prober runs the checks that must try something for real.
type Prober interface {
	// Userns creates a user and mount namespace with only the caller's ids
	// mapped (no newuidmap involved) and mounts a tmpfs inside it.
	Userns() error
	// Overlay mounts an overlay with userxattr in devbox's keep-id
	// namespace, in a temporary directory under parent, and uses it.
	Overlay(parent string) error
}

// Env is the caller and its settings, as the CLI resolved them.
type Env struct {
	Host   Host
	Getenv func(string) string

	UID, GID int
	User     string
	Home     string
	// Exe is the devbox binary's resolved path (for the AppArmor profile).
	Exe string
	// NSExe is the program that creates the user namespaces: the CLI
	// devbox's front runs (internal/libexec.Installed, or a copy in the
	// runtime directory), Exe itself in a build without a front; "" for
	// Exe.
	NSExe string

	ConfigPath string
	ConfigErr  error  // loading the configuration file failed
	StoreRoot  string // the store directory in effect

	Mapping    rootless.Mapping // from rootless.Detect
	MappingErr error

	// Probe runs the real tries; nil checks settings only.
	Probe Prober

	// FindNVIDIA finds the host's NVIDIA driver (device.FindNVIDIA); nil
	// skips the look.
	FindNVIDIA func() (*device.NVIDIA, error)
}

// Run runs every check in order.
func Run(e Env) []Result {
	r := &runner{Env: e}
	checks := []func() Result{
		r.userns, r.newuidmap, r.subids, r.runtimeDir, r.overlay, r.fuseOverlayfs,
		r.filesystem, r.cgroup, r.dbus, r.network, r.config, r.store, r.gpu,
	}
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		res := c()
		// Messages quote paths and variables from the environment: keep
		// each on one line whatever they contain.
		res.Message = oneLine(res.Message)
		out = append(out, res)
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// runner carries what later checks learn from earlier ones.
type runner struct {
	Env
	usernsOK  bool
	overlayOK bool
}

func (r *runner) getenv(k string) string {
	if r.Getenv == nil {
		return ""
	}
	return r.Getenv(k)
}

// readTrim reads a small file and trims it; "" when it cannot be read.
func (r *runner) readTrim(path string) string {
	b, err := r.Host.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// nearestExisting returns path or its closest existing ancestor.
func (r *runner) nearestExisting(path string) string {
	for p := path; ; {
		if _, err := r.Host.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return p
		}
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			return "/"
		}
		p = p[:i]
	}
}

// SplitHint separates "message (hint: fix)" into its two parts.
func SplitHint(s string) (msg, hint string) {
	i := strings.LastIndex(s, " (hint: ")
	if i < 0 || !strings.HasSuffix(s, ")") {
		return s, ""
	}
	return s[:i], s[i+len(" (hint: ") : len(s)-1]
}
