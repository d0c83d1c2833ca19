package cgroup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"

	"github.com/devbox-dev/devbox/internal/trace"
)

// managed are the controllers devbox enables for its boxes when the base
// offers them, limits or not, so that `devbox update` can add a limit to
// a running box and `devbox stats` has numbers.
var managed = []string{"cpu", "io", "memory", "pids"} //nolint:gochecknoglobals

// DetectHost describes the running system.
func DetectHost() Host {
	h := Host{Root: DefaultRoot, UID: os.Getuid(), User: os.Getenv("USER"), Dial: dialUserBus}
	switch cgroups.Mode() {
	case cgroups.Unified:
		h.Mode = Unified
	case cgroups.Hybrid:
		h.Mode = Hybrid
		h.Root = filepath.Join(DefaultRoot, "unified")
		h.V2Controllers, _ = Available(h.Root, "/")
	case cgroups.Legacy:
		h.Mode = Legacy
	default:
		h.Mode = Unavailable
	}
	h.Self = func() (string, error) { return cgroup2.PidGroupPath(os.Getpid()) }
	h.UserBus = userBus(h.UID)
	h.RuntimeDir = runtimeDir(h.UID)
	return h
}

// userBus returns the address of the user's session bus, or "" when there
// is none: $DBUS_SESSION_BUS_ADDRESS, else the socket systemd --user
// creates at $XDG_RUNTIME_DIR/bus.
func userBus(uid int) string {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a
	}
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, "bus")
	fi, err := os.Stat(p)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
		return ""
	}
	return "unix:path=" + p
}

// Box is one box's cgroup.
type Box struct {
	Root string // mount point of the unified hierarchy
	Path string // group path, e.g. /user.slice/…/devbox-<id>
	Kind Kind
	m    *cgroup2.Manager
}

// Load returns the box cgroup at group path p (as recorded by WriteRecord).
func Load(root, p string) (*Box, error) {
	m, err := cgroup2.Load(p, cgroup2.WithMountpoint(root))
	if err != nil {
		return nil, err
	}
	return &Box{Root: root, Path: p, m: m}, nil
}

// Setup creates the cgroup of box id with limits l, before any of the box's
// processes exist. It returns nil and no error when the host offers no
// cgroup and no limit was asked for. The caller (the CLI) may be moved into
// a leaf cgroup, or into a new systemd scope, on the way.
func Setup(ctx context.Context, h Host, id string, l Limits) (*Box, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	d, err := Decide(h, l)
	if err != nil {
		return nil, err
	}
	if d.Kind == Shared && !d.Ready {
		if serr := createShared(ctx, h, d.Base); serr != nil {
			// A scope per box, as where devbox.scope cannot be used.
			trace.Mark("cgroup: " + serr.Error())
			d = Decision{Kind: Scope}
		}
	}
	if d.Kind == Shared {
		trace.Mark("cgroup: in devbox.scope")
	}
	base := d.Base
	if d.Kind == Scope {
		scope, serr := startScope(ctx, h, id)
		if serr == nil {
			base = scope
		} else {
			// No usable systemd user manager behind the bus: a
			// delegated subtree still does.
			h.UserBus = ""
			d, err = Decide(h, l)
			if err != nil {
				var le *LimitError
				if errors.As(err, &le) {
					le.Reason = serr.Error() + ", and " + strings.TrimPrefix(le.Reason, "there is no systemd user session (no user bus) and ")
				}
				return nil, err
			}
			base = d.Base
		}
	}
	if d.Kind == None {
		return nil, nil
	}
	if l.Any() {
		if err := CheckControllers(h.Root, base, l, d.Kind); err != nil {
			return nil, err
		}
	}
	prepare := PrepareBase
	if d.Kind == Shared {
		prepare = prepareShared
	}
	if err := prepare(h.Root, base); err != nil {
		if !l.Any() {
			return nil, nil
		}
		return nil, &LimitError{Flags: l.Flags(), Reason: err.Error()}
	}
	b, err := create(h.Root, path.Join(base, Prefix+id), l)
	if err != nil {
		if !l.Any() {
			return nil, nil
		}
		return nil, err
	}
	b.Kind = d.Kind
	return b, nil
}

// PrepareBase lays out base for boxes: the processes in base move to
// base/devbox-leaf, and the controllers devbox manages (of those base
// offers) are enabled in base/cgroup.subtree_control. Concurrent callers
// are fine; a process that appears in base meanwhile is moved too.
func PrepareBase(root, base string) error { return prepareBase(root, base, LeafName) }

// prepareBase is PrepareBase with the leaf named leafName.
func prepareBase(root, base, leafName string) error {
	dir := filepath.Join(root, base)
	leaf := filepath.Join(dir, leafName)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating cgroup %s: %w", path.Join(base, leafName), err)
	}
	have, err := Available(root, base)
	if err != nil {
		return fmt.Errorf("reading the controllers of %s: %w", base, err)
	}
	for attempt := 0; ; attempt++ {
		if err := moveProcs(dir, leaf); err != nil {
			return err
		}
		err := enableControllers(root, base, have)
		// EBUSY: a process appeared in base after the move; move it too.
		if err == nil || !errors.Is(err, unix.EBUSY) || attempt >= 20 {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

// prepareShared is PrepareBase for devbox.scope, which its creator laid
// out (its one process, the keeper, is in its leaf): it only enables a
// managed controller the scope offers but does not enable yet, if any.
func prepareShared(root, base string) error {
	have, err := Available(root, base)
	if err != nil {
		return fmt.Errorf("reading the controllers of %s: %w", base, err)
	}
	return enableControllers(root, base, have)
}

// enableControllers enables for base's children the managed controllers
// of have that base/cgroup.subtree_control does not list yet.
func enableControllers(root, base string, have []string) error {
	file := filepath.Join(root, base, "cgroup.subtree_control")
	enabled, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	var add []string
	for _, c := range managed {
		if slices.Contains(have, c) && !slices.Contains(strings.Fields(string(enabled)), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := os.WriteFile(file, []byte(strings.Join(add, " ")), 0o644); err != nil {
		return fmt.Errorf("enabling %s in %s: %w", strings.Join(add, " "), path.Join(base, "cgroup.subtree_control"), err)
	}
	return nil
}

// moveProcs moves every process of cgroup directory from into to.
func moveProcs(from, to string) error {
	b, err := os.ReadFile(filepath.Join(from, "cgroup.procs"))
	if err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(from, "cgroup.procs"), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pid := strings.TrimSpace(sc.Text())
		if pid == "" {
			continue
		}
		err := os.WriteFile(filepath.Join(to, "cgroup.procs"), []byte(pid), 0o644)
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("moving process %s into %s: %w", pid, to, err)
		}
	}
	return nil
}

// create makes the box cgroup at group path p with limits l.
func create(root, p string, l Limits) (*Box, error) {
	m, err := cgroup2.NewManager(root, p, &cgroup2.Resources{})
	if err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", p, err)
	}
	b := &Box{Root: root, Path: p, m: m}
	if err := b.Update(l); err != nil {
		_ = os.Remove(filepath.Join(root, p))
		return nil, err
	}
	return b, nil
}

// Update applies the limits that are set in l to the box; the others stay
// as they are.
func (b *Box) Update(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if err := b.m.Update(l.Resources()); err != nil {
		return b.limitErr(l, err)
	}
	dir := filepath.Join(b.Root, b.Path)
	if l.MemorySwap == -1 {
		if err := os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("max"), 0o644); err != nil {
			return b.limitErr(Limits{MemorySwap: -1}, err)
		}
	}
	if l.IOWeight != 0 {
		if err := b.setIOWeight(l.IOWeight); err != nil {
			return b.limitErr(Limits{IOWeight: l.IOWeight}, err)
		}
	}
	return nil
}

// setIOWeight writes io.weight (the kernel's io controller, enforced by
// iocost), or io.bfq.weight when only BFQ offers a weight.
func (b *Box) setIOWeight(w uint64) error {
	dir := filepath.Join(b.Root, b.Path)
	if _, err := os.Stat(filepath.Join(dir, "io.weight")); err == nil {
		return os.WriteFile(filepath.Join(dir, "io.weight"), []byte("default "+strconv.FormatUint(w, 10)), 0o644)
	}
	if _, err := os.Stat(filepath.Join(dir, "io.bfq.weight")); err == nil {
		bw := max(1, min(w/10, 1000)) // BFQ weights are 1..1000
		return b.m.Update(&cgroup2.Resources{IO: &cgroup2.IO{BFQ: cgroup2.BFQ{Weight: uint16(bw)}}})
	}
	return errors.New("the kernel offers neither io.weight nor io.bfq.weight (hint: use a kernel with CONFIG_BLK_CGROUP_IOCOST or the BFQ I/O scheduler)")
}

func (b *Box) limitErr(l Limits, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return &LimitError{Flags: l.Flags(), Reason: fmt.Sprintf("the kernel does not offer it in %s: %v", b.Path, err),
			Hint: "--memory-swap needs swap accounting (memory.swap.max); check the controllers with: cat " + filepath.Join(b.Root, b.Path, "cgroup.controllers")}
	}
	return &LimitError{Flags: l.Flags(), Reason: fmt.Sprintf("writing the limits of %s: %v", b.Path, err)}
}

// File opens the cgroup directory for clone3's CLONE_INTO_CGROUP
// (syscall.SysProcAttr.CgroupFD).
func (b *Box) File() (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(b.Root, b.Path), os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening cgroup %s: %w", b.Path, err)
	}
	return f, nil
}

// OOMKills returns how many processes of the box the kernel killed for
// exceeding its memory limit (oom_kill in memory.events).
func (b *Box) OOMKills() uint64 {
	m, err := b.m.StatFiltered(cgroup2.StatMemoryEvents)
	if err != nil || m.MemoryEvents == nil {
		return 0
	}
	return m.MemoryEvents.OomKill
}

// Populated reports whether any process lives in the box's cgroup.
func (b *Box) Populated() bool {
	f, err := os.ReadFile(filepath.Join(b.Root, b.Path, "cgroup.events"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(f), "\n") {
		if k, v, _ := strings.Cut(line, " "); k == "populated" {
			return v == "1"
		}
	}
	return false
}

// Remove kills what is left in the box and removes its cgroup.
func (b *Box) Remove() error {
	dir := filepath.Join(b.Root, b.Path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if b.Populated() {
		_ = b.m.Kill()
	}
	var err error
	for i := 0; i < 200; i++ {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", b.Path, err)
}
