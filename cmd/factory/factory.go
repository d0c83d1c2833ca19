// Package factory is devbox's composition root: it builds the real
// dependencies every command receives through cmdutil.Factory.
package factory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/stagecall"
	"github.com/devbox-dev/devbox/rootless"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// Stage names this package starts in the namespaces; cmd/devbox routes them.
const (
	StageUnpack = "unpack"
	StageRmtree = "rmtree"
	// StageSnapshot moves a box's writable layer (store.FreezeMain).
	StageSnapshot = "snapshot"
)

// New returns the production factory.
func New(ios *iostreams.IOStreams, logger *slog.Logger) *cmdutil.Factory {
	root := new(string)
	f := &cmdutil.Factory{IOStreams: ios, Logger: logger, StoreRoot: root}
	f.Config = sync.OnceValues(func() (*config.Config, error) { return config.Load(config.Path()) })
	f.Store = func() (*store.Store, error) {
		c, err := f.Config()
		if err != nil {
			return nil, err
		}
		r, err := c.StoreRoot(*root)
		if err != nil {
			return nil, err
		}
		return store.Open(r)
	}
	f.Aliases = func() (alias.Table, error) {
		c, err := f.Config()
		if err != nil {
			return alias.Table{}, err
		}
		return alias.New(c.Aliases), nil
	}
	f.Registry = func() (image.Registries, error) {
		c, err := f.Config()
		if err != nil {
			return image.Registries{}, err
		}
		return image.Registries{Mirrors: c.Registries.Mirrors, Insecure: c.Registries.Insecure}, nil
	}
	var warnOnce sync.Once
	f.Mapping = sync.OnceValues(func() (rootless.Mapping, error) {
		m, err := rootless.Detect()
		if err == nil && m.Warning != "" {
			warnOnce.Do(func() { fmt.Fprintln(ios.ErrOut, "devbox: warning:", m.Warning) })
		}
		return m, err
	})
	f.Unpacker = func(st *store.Store) image.Unpacker {
		return func(ctx context.Context, jobs []store.UnpackJob, data io.Reader, lim limits.Limits) error {
			m, err := f.Mapping()
			if err != nil {
				return err
			}
			req := store.UnpackRequest{Root: st.Root, Jobs: jobs, IgnoreChownErrors: m.Single(), Stream: true, Limits: lim}
			var res store.UnpackResult
			if err := runStage(ctx, m, StageUnpack, req, &res, data); err != nil {
				return fmt.Errorf("unpacking layers: %w", err)
			}
			if res.Error != "" {
				if res.Unsafe {
					return fmt.Errorf("%w: %s (the image is hostile or corrupt; nothing was kept)", store.ErrUnsafeLayer, res.Error)
				}
				return errors.New(res.Error)
			}
			return nil
		}
	}
	f.Remover = func(ctx context.Context, st *store.Store) store.Remover {
		return func(paths []string) error {
			m, err := f.Mapping()
			if err != nil {
				return err
			}
			return runStage(ctx, m, StageRmtree, store.RemoveRequest{Root: st.Root, Paths: paths}, nil, nil)
		}
	}
	f.Freezer = func(ctx context.Context, st *store.Store) store.Freezer {
		return func(req store.FreezeRequest) (store.FreezeResult, error) {
			m, err := f.Mapping()
			if err != nil {
				return store.FreezeResult{}, err
			}
			req.Root = st.Root
			var res store.FreezeResult
			if err := runStage(ctx, m, StageSnapshot, req, &res, nil); err != nil {
				return res, err
			}
			if res.Error != "" {
				return res, errors.New(res.Error)
			}
			return res, nil
		}
	}
	f.BoxNames = func() ([]string, error) {
		c, err := f.Config()
		if err != nil {
			return nil, err
		}
		// Read-only: completion must not create the store.
		r, err := c.StoreRoot(*root)
		if err != nil {
			return nil, err
		}
		st := &store.Store{Root: r}
		return (&rbox.Store{Dir: st.ContainersDir()}).Names(), nil
	}
	return f
}

// runStage runs a devbox stage in the keep-id namespace, sends it in as JSON
// on stdin, followed by what data (if not nil) reads, and decodes its JSON
// answer from fd 3 into out (when non-nil): an answer is the result also
// when the stage failed after writing it.
func runStage(ctx context.Context, m rootless.Mapping, stage string, in, out any, data io.Reader) error {
	var answer bytes.Buffer
	err := stagecall.Run(ctx, stagecall.Call{Stage: stage, Mapping: m, Request: in, Data: data,
		Env: []string{"DEVBOX_LOG_LEVEL=" + os.Getenv("DEVBOX_LOG_LEVEL")}}, &answer)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if out != nil && answer.Len() > 0 {
		if err := json.Unmarshal(answer.Bytes(), out); err != nil {
			return fmt.Errorf("reading %s result: %w", stage, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s in user namespace: %w", stage, err)
	}
	return nil
}
