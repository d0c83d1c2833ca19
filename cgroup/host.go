package cgroup

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Mode is how the host mounts cgroups.
type Mode int

const (
	// Unavailable: no cgroup filesystem at the usual place.
	Unavailable Mode = iota
	// Legacy: cgroup v1 only.
	Legacy
	// Hybrid: cgroup v1 for the controllers, with a v2 hierarchy beside
	// them (systemd's "hybrid" layout, /sys/fs/cgroup/unified).
	Hybrid
	// Unified: pure cgroup v2, the only mode devbox can limit in.
	Unified
)

func (m Mode) String() string {
	return [...]string{"unavailable", "legacy (cgroup v1)", "hybrid (cgroup v1 + v2)", "unified (cgroup v2)"}[m]
}

// DefaultRoot is where the unified hierarchy is mounted.
const DefaultRoot = "/sys/fs/cgroup"

// LeafName is the child of a base cgroup that holds the processes that were
// in it (the devbox CLI among them): cgroup v2 lets a cgroup with
// controllers enabled for its children have no processes of its own.
const LeafName = "devbox-leaf"

// Prefix starts the name of every box cgroup and systemd scope.
const Prefix = "devbox-"

// Host is what Decide and Setup look at. DetectHost fills it in from the
// running system; tests build one around a fake tree in a temporary
// directory.
type Host struct {
	// Root is the mount point of the unified hierarchy (required).
	Root string
	// Mode is how the host mounts cgroups (required).
	Mode Mode
	// V2Controllers are the controllers of the v2 hierarchy in hybrid
	// mode (optional; nil elsewhere).
	V2Controllers []string
	// UID is the caller's uid (required).
	UID int
	// User names the caller in hints (optional).
	User string
	// Self returns the caller's cgroup v2 group path, as in the "0::"
	// line of /proc/self/cgroup (required). It is called again after the
	// caller moved into a systemd scope.
	Self func() (string, error)
	// UserBus is the address of the systemd user bus; "" when there is
	// no user session.
	UserBus string
	// Dial connects to the user bus (required when UserBus is set).
	Dial func(ctx context.Context) (Systemd, error)
	// RuntimeDir is $XDG_RUNTIME_DIR when it is the caller's; "" disables
	// creating devbox.scope (its lock lives there).
	RuntimeDir string
	// StartKeeper starts the keeper process of a new devbox.scope
	// (package cgroup/keeper); nil disables creating devbox.scope.
	StartKeeper func() (*os.Process, error)
	// IsCgroup2 reports whether dir is on a cgroup2 file system
	// (optional: nil asks statfs).
	IsCgroup2 func(dir string) bool
}

// Kind is where a box's cgroup comes from.
type Kind int

const (
	// None: no cgroup of its own; the box stays in the caller's.
	None Kind = iota
	// Scope: a transient systemd scope with Delegate=yes, started through
	// the user bus.
	Scope
	// Subtree: below the caller's own cgroup, which is delegated to it.
	Subtree
	// Shared: below the user's devbox.scope, one delegated systemd scope
	// for all of the user's boxes, found by path and started (through the
	// user bus) only when missing.
	Shared
)

func (k Kind) String() string {
	return [...]string{"none", "systemd scope", "delegated subtree", "shared devbox.scope"}[k]
}

// Decision is the outcome of Decide.
type Decision struct {
	Kind Kind
	// Base is the group path under which the box cgroup is created
	// (Subtree and Shared; for Scope it is known once the scope exists).
	Base string
	// Ready: Shared's devbox.scope exists and is usable; otherwise Setup
	// starts it first.
	Ready bool
}

// LimitError is a limit that cannot be applied on this host. Its message
// says which flags, why, and how to fix it.
type LimitError struct {
	Flags  []string
	Reason string
	Hint   string
}

func (e *LimitError) Error() string {
	msg := "cannot apply " + strings.Join(e.Flags, ", ") + ": " + e.Reason
	if e.Hint != "" {
		msg += " (hint: " + e.Hint + ")"
	}
	return msg
}

// DelegateConf is the systemd drop-in that delegates every controller
// devbox uses to user sessions.
const DelegateConf = "/etc/systemd/system/user@.service.d/delegate.conf"

const delegateHint = "as root, create " + DelegateConf + ` containing the two lines "[Service]" and "Delegate=cpu cpuset io memory pids", run "systemctl daemon-reload", then log out and back in`

// Decide chooses where a box's cgroup comes from. It reads only the cgroup
// tree under h.Root. With limits set it fails when they cannot be applied;
// without, it returns None instead.
func Decide(h Host, l Limits) (Decision, error) {
	fail := func(reason, hint string) (Decision, error) {
		if !l.Any() {
			return Decision{Kind: None}, nil
		}
		return Decision{}, &LimitError{Flags: l.Flags(), Reason: reason, Hint: hint}
	}
	switch h.Mode {
	case Unavailable:
		return fail("no cgroup filesystem is mounted at "+DefaultRoot,
			"mount the unified cgroup v2 hierarchy: mount -t cgroup2 none "+DefaultRoot)
	case Legacy:
		return fail("this host uses cgroup v1 only, and devbox's limits need cgroup v2",
			unifiedHint)
	case Hybrid:
		reason := "this host mounts cgroup v1 and v2 side by side (hybrid mode), and "
		var usable []string
		for _, c := range managed {
			if slices.Contains(h.V2Controllers, c) {
				usable = append(usable, c)
			}
		}
		if len(usable) == 0 {
			offers := "none"
			if len(h.V2Controllers) > 0 {
				offers = strings.Join(h.V2Controllers, " ")
			}
			reason += "the cpu, io, memory and pids controllers are all bound to v1: there is no usable v2 controller (the v2 hierarchy at " + h.Root + " offers: " + offers + ")"
		} else {
			reason += "devbox needs the unified cgroup v2 hierarchy"
		}
		return fail(reason, unifiedHint)
	}
	if h.UserBus != "" {
		d, ok := decideShared(h)
		if !ok {
			return Decision{Kind: Scope}, nil
		}
		if l.Any() {
			// A missing scope will offer what the user manager
			// delegates.
			offers := d.Base
			if !d.Ready {
				offers = userManager(d.Base, h.UID)
			}
			if err := CheckControllers(h.Root, offers, l, Shared); err != nil {
				return Decision{}, err
			}
		}
		return d, nil
	}
	self, err := h.Self()
	if err != nil {
		return fail("finding your cgroup: "+err.Error(), "")
	}
	base := SubtreeBase(self)
	if err := Delegated(h.Root, base, h.UID); err != nil {
		user := h.User
		if user == "" {
			user = fmt.Sprint(h.UID)
		}
		return fail("there is no systemd user session (no user bus) and "+err.Error(),
			"log in through a session that starts systemd --user (a desktop or ssh login, not su or sudo), or as root run \"loginctl enable-linger "+user+"\" so that your user manager runs; \"systemctl --user status\" checks it")
	}
	if l.Any() {
		if err := CheckControllers(h.Root, base, l, Subtree); err != nil {
			return Decision{}, err
		}
	}
	return Decision{Kind: Subtree, Base: base}, nil
}

const unifiedHint = "boot the host with the unified cgroup v2 hierarchy: add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot (Debian 11, Ubuntu 21.10, Fedora 31 and later use it by default)"

// SubtreeBase returns the base cgroup for boxes of a process in group self:
// self itself, or its parent when self is devbox's own leaf (a previous
// devbox moved the caller there).
func SubtreeBase(self string) string {
	if path.Base(self) == LeafName {
		return path.Dir(self)
	}
	return self
}

// Delegated checks that the cgroup group under root is delegated to uid: the
// directory, its cgroup.procs and cgroup.subtree_control belong to uid and
// are writable by it (what systemd does for Delegate=yes, and what
// delegating a subtree by hand means).
func Delegated(root, group string, uid int) error {
	dir := filepath.Join(root, group)
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("your cgroup %s cannot be used: %w", group, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || fi.Mode().Perm()&0o200 == 0 {
			return fmt.Errorf("your cgroup %s is not delegated to you (%s belongs to uid %d)", group, filepath.Base(p), st.Uid)
		}
	}
	return nil
}

// Available returns the controllers a child of group can use: the
// contents of group's cgroup.controllers.
func Available(root, group string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, group, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// CheckControllers fails when a controller the limits need is not delegated
// to the base cgroup.
func CheckControllers(root, base string, l Limits, k Kind) error {
	have, err := Available(root, base)
	if err != nil {
		return &LimitError{Flags: l.Flags(), Reason: "reading the controllers of " + base + ": " + err.Error()}
	}
	var missing, flags []string
	for _, c := range l.Controllers() {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
			flags = append(flags, l.flagsFor(c)...)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	offers := strings.Join(have, " ")
	if offers == "" {
		offers = "none"
	}
	what := "the " + strings.Join(missing, " and ") + " controller"
	if len(missing) > 1 {
		what += "s are"
	} else {
		what += " is"
	}
	e := &LimitError{Flags: flags}
	switch k {
	case Scope, Shared:
		e.Reason = what + " not delegated to your systemd user session (" + base + " offers: " + offers + ")"
		e.Hint = delegateHint
	default:
		e.Reason = what + " not enabled for your cgroup " + base + " (it offers: " + offers + ")"
		e.Hint = "whoever delegated " + base + " must enable " + strings.Join(missing, " and ") + " in its parent's cgroup.subtree_control; under systemd, " + delegateHint
	}
	return e
}
