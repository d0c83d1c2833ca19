package box

import (
	"fmt"
	"time"

	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// layerOps moves boxes' writable layers through the snapshot stage and
// records each frozen layer's marker.
type layerOps struct{ m *Manager }

// LayerOps is how the box store moves writable layers (rbox.LayerOps):
// snapshots, rollbacks, clones and the completion of an interrupted one.
func (m *Manager) LayerOps() rbox.LayerOps { return layerOps{m} }

func (o layerOps) NewLayer() string { return store.NewSnapshotLayer() }

func (o layerOps) Freeze(id, layer string) error {
	res, err := o.m.freezer()(store.FreezeRequest{Op: store.FreezeOp, Box: id, Layer: layer})
	if err != nil {
		return err
	}
	return o.m.st.WriteSnapshotMarker(layer, id, res.Files, res.Bytes)
}

func (o layerOps) Reset(id string) error {
	_, err := o.m.freezer()(store.FreezeRequest{Op: store.ResetOp, Box: id})
	return err
}

// LockStopped returns box name's record, read again under its lock, and
// the lock's release, once the box is stopped: with stop, a running box
// is stopped first (its sessions end); without, it is refused.
func (m *Manager) LockStopped(name, verb string, stop bool) (*rbox.Record, func(), error) {
	r, err := m.bs.Get(name)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := m.bs.Lock("box-" + r.ID)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*rbox.Record, func(), error) { unlock(); return nil, nil, err }
	if r, err = m.bs.Get(r.ID); err != nil {
		return fail(err)
	}
	if run, ok := m.LiveRun(r.ID); ok {
		return fail(fmt.Errorf("box %s is a devbox run in progress (pid %d) (hint: wait for its command to end, or devbox stop %s)", r.Name, run.PID, r.Name))
	}
	if m.bs.Running(r.ID) {
		if !stop {
			return fail(fmt.Errorf("box %s is running; its writable layer is frozen only while it is stopped (hint: devbox %s --stop %s stops it first, ending its sessions)", r.Name, verb, r.Name))
		}
		if err := m.Stop(r, 10*time.Second, "devbox "+verb); err != nil {
			return fail(err)
		}
	}
	return r, unlock, nil
}

// Snapshot freezes stopped box name's writable layer as snapshot tag ("":
// the next snapN); stop stops a running box first (its sessions end).
func (m *Manager) Snapshot(name, tag string, stop bool) (rbox.Snapshot, error) {
	r, unlock, err := m.LockStopped(name, "snapshot", stop)
	if err != nil {
		return rbox.Snapshot{}, err
	}
	defer unlock()
	return m.bs.TakeSnapshot(r, tag, m.LayerOps())
}

// DropSnapshot forgets box name's snapshot tag (its layers go with prune
// once no box stacks them). Only the record changes: the box may run.
func (m *Manager) DropSnapshot(name, tag string) error {
	r, err := m.bs.Get(name)
	if err != nil {
		return err
	}
	unlock, err := m.bs.Lock("box-" + r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if r, err = m.bs.Get(r.ID); err != nil {
		return err
	}
	return m.bs.DropSnapshot(r, tag)
}

// Rollback returns stopped box name to its snapshot tag ("": the newest).
func (m *Manager) Rollback(name, tag string, stop bool) (rbox.Snapshot, error) {
	r, unlock, err := m.LockStopped(name, "rollback", stop)
	if err != nil {
		return rbox.Snapshot{}, err
	}
	defer unlock()
	return m.bs.Rollback(r, tag, m.LayerOps())
}

// Clone makes box newName a copy of stopped box name sharing all its
// layers.
func (m *Manager) Clone(name, newName string, stop bool) (*rbox.Record, error) {
	if err := runtime.ValidateName(newName); err != nil {
		return nil, &InputError{Err: err}
	}
	unlockBoxes, err := m.bs.Lock("boxes")
	if err != nil {
		return nil, err
	}
	defer unlockBoxes()
	r, unlock, err := m.LockStopped(name, "clone", stop)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.bs.Clone(r, newName, runtime.NewID(), m.LayerOps())
}
