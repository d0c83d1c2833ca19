package runtime

import (
	"encoding/json"
	"fmt"
	rsession "github.com/devbox-dev/devbox/runtime/session"
	"io"
	"os"

	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/network"
	"golang.org/x/sys/unix"
)

// SpecVersion is bumped whenever Spec changes incompatibly.
const SpecVersion = 1

// Spec is everything the box init needs, computed on the host by the CLI
// and handed to the init as JSON. It is plain data: no flags are re-parsed
// inside the namespaces.
type Spec struct {
	Version int    `json:"version"`
	ID      string `json:"id"`   // required: unique, [a-z0-9]{12,64}
	Name    string `json:"name"` // optional: user-visible name

	// Root filesystem: an overlay of Lowers (absolute paths of unpacked
	// layer directories, top-most first) with a writable upper directory in
	// ContainerDir/upper (work dir ContainerDir/work, mount point
	// ContainerDir/merged). ContainerDir exists and belongs to the user.
	Lowers       []string `json:"lowers"`
	ContainerDir string   `json:"containerDir"`
	// Remove makes the init delete ContainerDir's contents (upper, work,
	// merged, files) once the command has exited: an ephemeral box.
	Remove bool `json:"remove"`
	// ScratchInMemory puts the box's writable layer and files on a tmpfs
	// private to the box (ephemeral runs; docs/config.md [run] scratch);
	// the init falls back to the disk where tmpfs lacks user xattrs.
	ScratchInMemory bool `json:"scratchInMemory,omitempty"`
	// ScratchBytes bounds that tmpfs (the box's --memory): writes past it
	// fail with ENOSPC in the box instead of pressing on the host's
	// memory. 0: tmpfs's default, half of RAM.
	ScratchBytes int64 `json:"scratchBytes,omitempty"`

	// The process.
	Args     []string `json:"args"`     // required: argv; Args[0] is looked up in PATH inside
	Env      []string `json:"env"`      // complete environment (image Env + overrides + TERM)
	Cwd      string   `json:"cwd"`      // default "/"
	User     string   `json:"user"`     // "", "name", "uid", "uid:gid", "name:group"; resolved inside against /etc/passwd and /etc/group
	Terminal bool     `json:"terminal"` // allocate a pty in the box; stdin of the init is then the host terminal

	Hostname string `json:"hostname"` // required
	Net      string `json:"net"`      // "none" (only lo, up), "host", or a user-mode driver (network.Driver*)
	// NetFD is the init's end of the network handshake socketpair with the
	// host's network helper (package network), for a user-mode driver: the
	// host passes it in ExtraFiles (fd 3 for devbox run; fd 4 for a box,
	// after the agent's listener on fd 3).
	NetFD int `json:"netFD,omitempty"`
	// NetEarly (the gvisor driver, without published or forwarded ports):
	// the init sets the box's network up itself and hands the tap to the
	// helper without waiting for it (network.Message.Early).
	NetEarly bool `json:"netEarly,omitempty"`

	// Files written into the box's /etc (bind-mounted over the image's).
	Hosts      string `json:"hosts"`
	ResolvConf string `json:"resolvConf"`

	// Mounts are extra bind mounts (volumes, home, sockets), applied in
	// order after the standard ones.
	Mounts []Mount `json:"mounts,omitempty"`

	// Agent makes the init a persistent box: instead of running Args it
	// serves sessions on the listening socket passed as fd 3 (package
	// runtime/agent), and exits GraceSeconds after its last session left.
	Agent        bool `json:"agent,omitempty"`
	GraceSeconds int  `json:"graceSeconds,omitempty"`
	// Security is how every command of the box is confined: its
	// capability bounding set, no_new_privs and the seccomp filter
	// (harden_linux.go, docs/security.md). The zero value is the strict
	// default.
	Security Security `json:"security"`

	// Account, when set, is written into the box's /etc/passwd, /etc/group
	// and /etc/shadow (and a sudoers drop-in) at every start, so the user
	// exists inside without a package manager or network.
	Account *Account `json:"account,omitempty"`
}

// Account is the user's identity inside a box.
type Account = rsession.Account

// Security is the confinement of a box's commands. Its zero value is the
// default of a sandboxed box: the default capability set, no_new_privs and
// the default seccomp filter.
type Security struct {
	// Caps is the capability bounding set of every command, as names
	// ("CAP_CHOWN", …); nil means DefaultCaps. A command running as root
	// has these capabilities; any other user has none.
	Caps []string `json:"caps,omitempty"`
	// AllowSetuid leaves no_new_privs off, so that setuid programs (sudo)
	// work: dev boxes, and runs that ask for it.
	AllowSetuid bool `json:"allowSetuid,omitempty"`
	// Unconfined turns the seccomp filter off (--security-opt
	// seccomp=unconfined).
	Unconfined bool `json:"unconfined,omitempty"`
	// Nested lets commands create user namespaces and mount inside them:
	// the filter is Docker's profile as for a process with CAP_SYS_ADMIN,
	// while the bounding set stays as it is. Dev boxes have it, for the
	// sandboxes of their own that Chromium, Electron apps, bwrap or a
	// nested podman build.
	Nested bool `json:"nested,omitempty"`
	// ScopeAbstract keeps every command from reaching an abstract unix
	// socket made outside it (Landlock's scope, Linux 6.12): a sandbox
	// that shares the host's network namespace (--net host), and with it
	// the host's abstract sockets (an X server's, some session buses').
	ScopeAbstract bool `json:"scopeAbstract,omitempty"`
}

// Mount is one bind mount from the host into the box, or (Tmpfs) an
// empty private directory of the box user's.
type Mount struct {
	Source   string `json:"source"`   // absolute host path; empty with Tmpfs
	Target   string `json:"target"`   // absolute path inside the box
	ReadOnly bool   `json:"readOnly"` // remount read-only
	Optional bool   `json:"optional"` // skip silently when Source is missing
	// Tmpfs mounts a fresh tmpfs (mode 0700, the Account's owner, or root
	// without one) instead of a bind: the box's $XDG_RUNTIME_DIR, into
	// which the session's sockets are bound by the mounts after it.
	Tmpfs bool `json:"tmpfs,omitempty"`
	// Dev and Ino, when Ino is set, are the device and inode Source had
	// when the box was created: the init opens Source without following
	// symbolic links and binds it only if it is still that file.
	Dev uint64 `json:"dev,omitempty"`
	Ino uint64 `json:"ino,omitempty"`
}

// Validate checks what the init relies on.
func (s *Spec) Validate() error {
	switch {
	case s.Version != SpecVersion:
		return fmt.Errorf("box spec version %d, this devbox understands %d", s.Version, SpecVersion)
	case s.ID == "":
		return fmt.Errorf("box spec: missing id")
	case len(s.Lowers) == 0:
		return fmt.Errorf("box spec: no layers")
	case s.ContainerDir == "":
		return fmt.Errorf("box spec: missing container directory")
	case len(s.Args) == 0:
		return fmt.Errorf("box spec: no command")
	case s.Net != "none" && s.Net != "host" && !network.IsUserMode(s.Net):
		return fmt.Errorf("box spec: unknown network mode %q", s.Net)
	case network.IsUserMode(s.Net) && s.NetFD < 3:
		return fmt.Errorf("box spec: network %s without a handshake descriptor", s.Net)
	case s.NetEarly && s.Net != network.DriverGvisor:
		return fmt.Errorf("box spec: an early network start with network %s (only %s has one)", s.Net, network.DriverGvisor)
	}
	return s.validatePaths()
}

// WriteSpec writes s to path atomically.
func WriteSpec(path string, s *Spec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	// Created anew: a link planted in the box's directory is not followed.
	f, err := safefile.Create(tmp, 0, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// maxSpec bounds what is read of a spec.
const maxSpec = 64 << 20

// ReadSpec reads a spec written by WriteSpec.
func ReadSpec(path string) (*Spec, error) {
	// Input: a regular file reached without a link, of a bounded size.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("box spec %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSpec+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSpec {
		return nil, fmt.Errorf("box spec %s: larger than %d bytes", path, maxSpec)
	}
	s, err := ParseSpec(b)
	if err != nil {
		return nil, fmt.Errorf("box spec %s: %w", path, err)
	}
	return s, nil
}

// ParseSpec decodes and validates a spec.
func ParseSpec(b []byte) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading box spec: %w", err)
	}
	return &s, s.Validate()
}
