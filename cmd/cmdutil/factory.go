package cmdutil

import (
	"context"
	"log/slog"

	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/rootless"
)

// Factory gives commands their dependencies. Fields are set by
// cmd/factory.New; tests replace them with fakes.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Logger    *slog.Logger

	// StoreRoot is the --store flag's value ("" when unset).
	StoreRoot *string

	Config   func() (*config.Config, error)
	Store    func() (*store.Store, error)
	Aliases  func() (alias.Table, error)
	Mapping  func() (rootless.Mapping, error)
	Registry func() (image.Registries, error)
	// Unpacker unpacks layers inside the keep-id user namespace.
	Unpacker func(st *store.Store) image.Unpacker
	// Remover removes subordinate-id owned trees inside the namespace.
	Remover func(ctx context.Context, st *store.Store) store.Remover
	// Freezer moves boxes' writable layers inside the namespace
	// (snapshots, rollbacks, clones).
	Freezer func(ctx context.Context, st *store.Store) store.Freezer
	// BoxNames lists the names of the user's boxes (shell completion);
	// nil while no box store is wired in.
	BoxNames func() ([]string, error)
}
