package cmdutil

import (
	"context"
	"errors"
	"fmt"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/network"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// OpenBoxes returns the box lifecycle (package box) wired to f: its
// store, id mapping, configuration and aliases; pulls with progress on
// stderr; warnings printed on stderr as "devbox: warning: …".
func OpenBoxes(ctx context.Context, f *Factory) (*box.Manager, error) {
	st, err := f.Store()
	if err != nil {
		return nil, err
	}
	m, err := f.Mapping()
	if err != nil {
		return nil, err
	}
	errOut := f.IOStreams.ErrOut
	return box.Open(ctx, box.Deps{
		Images:  st,
		Mapping: m,
		Settings: func() (box.Settings, error) {
			cfg, err := f.Config()
			if err != nil {
				return box.Settings{}, err
			}
			return box.Settings{Network: network.Config(cfg.Network), Provision: cfg.Provision,
				ScratchOnDisk: !cfg.Run.ScratchInMemory(), Path: config.Path()}, nil
		},
		Aliases: f.Aliases,
		Remover: func(ctx context.Context) store.Remover { return f.Remover(ctx, st) },
		Freezer: func(ctx context.Context) store.Freezer { return f.Freezer(ctx, st) },
		Pull: func(ctx context.Context, ref string, plat *v1.Platform, quiet bool) error {
			// The pulled reference is not the command's output.
			saved := f.IOStreams.Out
			f.IOStreams.Out = f.IOStreams.ErrOut
			defer func() { f.IOStreams.Out = saved }()
			_, err := PullImage(ctx, f, ref, plat, quiet)
			return err
		},
		Unpacker: func() image.Unpacker { return f.Unpacker(st) },
		PullLimits: func() (limits.Limits, error) {
			cfg, err := f.Config()
			if err != nil {
				return limits.Limits{}, err
			}
			return cfg.Limits.Resolve(config.Path()), nil
		},
		Registries: f.Registry,
		Warn:       func(msg string) { fmt.Fprintf(errOut, "devbox: warning: %s\n", msg) },
		Progress:   errOut,
	})
}

// IsUsage reports whether err is a mistake in what was asked: a
// FlagError, or a domain package's bad input (an error with a BadInput
// method, such as box.InputError).
func IsUsage(err error) bool {
	var fe *FlagError
	var bi interface{ BadInput() }
	return errors.As(err, &fe) || errors.As(err, &bi)
}
