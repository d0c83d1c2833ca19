// Package box implements the persistent-box verbs: create, shell, exec,
// ls, inspect, stop, rm, prune, ports, snapshot, rollback, clone, assemble
// and build. They parse flags and print; the lifecycle is the domain
// package box's (imported as dbox), records and specs runtime/box's, and
// the protocol with a running box runtime/agent's.
package box

import (
	"context"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/image/store"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// env bundles what the box verbs use: the lifecycle (mgr) and, for the
// session client, the stores it reads.
type env struct {
	f   *cmdutil.Factory
	mgr *dbox.Manager
	st  *store.Store
	bs  *rbox.Store
	ctx context.Context
}

func open(ctx context.Context, f *cmdutil.Factory) (*env, error) {
	m, err := cmdutil.OpenBoxes(ctx, f)
	if err != nil {
		return nil, err
	}
	return &env{f: f, mgr: m, st: m.Images(), bs: m.Boxes(), ctx: ctx}, nil
}
