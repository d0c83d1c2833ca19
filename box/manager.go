// Package box is the lifecycle of devbox's boxes: create, start, stop,
// remove, prune, list, provision, snapshot locks, devbox run's ephemeral
// boxes (Manager.Run), the network of a start and the cgroups of running
// boxes. The verbs under cmd/ parse flags, call a Manager and print what
// it returns; this package never imports cmd/, cobra or pflag, and it
// prints nothing itself: warnings go to the Manager's Warn callback,
// progress lines to its Progress writer.
//
// Records, specs and the box store are runtime/box's (imported as rbox);
// the protocol with a running box is runtime/agent's; starting a process
// in its namespaces is rootless's.
package box

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/rootless"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Settings are the parts of devbox's configuration file that boxes use.
type Settings struct {
	Network   network.Config
	Provision provision.Config
	// ScratchOnDisk: an ephemeral run's writable layer is on disk
	// ([run] scratch = "disk"), not in memory.
	ScratchOnDisk bool
	// Path is the configuration file's (optional): a run's replay record
	// is guarded by it.
	Path string
}

// Deps are what a Manager is made of. Every field is required unless it
// says otherwise; cmd/cmdutil.OpenBoxes fills them from the Factory.
type Deps struct {
	Images  *store.Store
	Mapping rootless.Mapping
	// Settings reads the configuration (called when a start or create
	// needs it: a broken file fails only those).
	Settings func() (Settings, error)
	// Aliases is the alias table (built-in and the user's).
	Aliases func() (alias.Table, error)
	// Remover removes subordinate-id owned trees (box directories),
	// bounded by ctx.
	Remover func(ctx context.Context) store.Remover
	// Freezer moves writable layers (snapshots, rollbacks, clones).
	Freezer func(ctx context.Context) store.Freezer
	// Pull pulls ref into Images with the CLI's progress, none when quiet
	// (optional: nil makes a missing image an error).
	Pull func(ctx context.Context, ref string, plat *v1.Platform, quiet bool) error
	// Unpacker, PullLimits and Registries are what devbox build's commit
	// and push need (optional for everything else).
	Unpacker   func() image.Unpacker
	PullLimits func() (limits.Limits, error)
	Registries func() (image.Registries, error)
	// Warn receives one warning a call, without a prefix (optional).
	Warn func(msg string)
	// Progress receives progress lines (provisioning; optional).
	Progress io.Writer
}

// Manager does the work of the box verbs on one store.
type Manager struct {
	ctx      context.Context
	st       *store.Store
	bs       *rbox.Store
	ids      rootless.Mapping
	deps     Deps
	progress io.Writer
}

// Open returns the Manager of d.Images' boxes; ctx bounds pulls and the
// helpers' work.
func Open(ctx context.Context, d Deps) (*Manager, error) {
	bs, err := OpenStore(d.Images)
	if err != nil {
		return nil, err
	}
	m := &Manager{ctx: ctx, st: d.Images, bs: bs, ids: d.Mapping, deps: d, progress: d.Progress}
	if m.progress == nil {
		m.progress = io.Discard
	}
	return m, nil
}

// Images is the image store.
func (m *Manager) Images() *store.Store { return m.st }

// Boxes is the box store (records, locks, runtime directories).
func (m *Manager) Boxes() *rbox.Store { return m.bs }

// Mapping is the caller's id mapping.
func (m *Manager) Mapping() rootless.Mapping { return m.ids }

func (m *Manager) settings() (Settings, error) {
	if m.deps.Settings == nil {
		return Settings{}, nil
	}
	return m.deps.Settings()
}

func (m *Manager) aliases() (alias.Table, error) { return m.deps.Aliases() }

func (m *Manager) freezer() store.Freezer { return m.deps.Freezer(m.ctx) }

// Remover removes subordinate-id owned trees, bounded by m's context.
func (m *Manager) Remover() store.Remover { return m.deps.Remover(m.ctx) }

// WithContext returns a copy of m whose work ctx bounds (a removal that
// must run to its end after Ctrl-C: context.WithoutCancel).
func (m *Manager) WithContext(ctx context.Context) *Manager {
	c := *m
	c.ctx = ctx
	return &c
}

// warn passes one warning on.
func (m *Manager) warn(format string, args ...any) {
	if m.deps.Warn != nil {
		m.deps.Warn(fmt.Sprintf(format, args...))
	}
}

// InputError is a mistake in what the caller asked for (a flag's value, a
// name): the CLI prints it with a pointer to the usage, exit code 125.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// BadInput marks the error for the CLI (cmdutil.IsUsage).
func (e *InputError) BadInput() {}

func inputErrorf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// IsInput reports whether err is an InputError.
func IsInput(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}
