package box

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Snapshots and clones. A box is its image's layers plus one writable
// layer (containers/<id>/upper). Freezing moves that writable layer into
// the store as a layer of its own (image/store: one rename, no copy) and
// stacks it on top of the box's lowers under a fresh, empty upper: a
// snapshot records the lowers at that moment, a rollback returns to them
// (the writable layer since is discarded), and a clone is a new box over
// the same lowers. Boxes are frozen only while stopped (the caller holds
// the box's lock and checked): a running box's upper is in use by its
// overlay mount.

// Snapshot is one snapshot of a box.
type Snapshot struct {
	Tag     string    `json:"tag"`
	Created time.Time `json:"created"`
	// Lowers are the box's layers at the snapshot, top-most first: its
	// frozen writable layer, then the layers below it.
	Lowers []string `json:"lowers"`
}

// Pending is a move of the writable layer that the record already
// describes but an interrupted devbox may not have made: the next start
// (or snapshot, rollback, clone) makes it first (Complete).
type Pending struct {
	Op    string `json:"op"`              // LayerFreeze or LayerReset
	Layer string `json:"layer,omitempty"` // LayerFreeze: the new layer
}

// Pending operations (the same words as image/store's).
const (
	LayerFreeze = "freeze"
	LayerReset  = "reset"
)

// LayerOps moves a box's writable layer, in the user namespace (the
// caller wires image/store's snapshot stage in).
type LayerOps interface {
	// Freeze moves box id's upper to the store layer named layer and
	// gives the box an empty one; done once the layer exists.
	Freeze(id, layer string) error
	// Reset discards box id's upper and gives it an empty one.
	Reset(id string) error
	// NewLayer returns a fresh layer name.
	NewLayer() string
}

// MaxSnapshots bounds a box's snapshots (each adds at most one layer to
// the overlay, whose kernel limit is 500 lowers).
const MaxSnapshots = 100

// CheckTag accepts a snapshot tag: 1 to 64 letters, digits, '-', '_', '.',
// not starting with '-' or '.'.
func CheckTag(t string) error {
	ok := len(t) > 0 && len(t) <= 64 && t[0] != '-' && t[0] != '.'
	for i := 0; ok && i < len(t); i++ {
		c := t[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
	}
	if !ok {
		return fmt.Errorf("snapshot tag %q is not a tag (letters, digits, '-', '_', '.'; at most 64)", t)
	}
	return nil
}

// checkSnapshots is Check's part for snapshots and a pending move.
func (r *Record) checkSnapshots() error {
	seen := map[string]bool{}
	for i, s := range r.Snapshots {
		if err := CheckTag(s.Tag); err != nil {
			return fmt.Errorf("snapshots[%d]: %v", i, err)
		}
		if seen[s.Tag] {
			return fmt.Errorf("snapshots[%d]: tag %q is used twice", i, s.Tag)
		}
		seen[s.Tag] = true
		if len(s.Lowers) == 0 {
			return fmt.Errorf("snapshots[%d]: no layers", i)
		}
		for _, l := range s.Lowers {
			if !validHex64(l) {
				return fmt.Errorf("snapshots[%d]: layer %q is not a layer id of this store (64 hex digits)", i, l)
			}
		}
	}
	if p := r.Pending; p != nil {
		switch {
		case p.Op == LayerFreeze && validHex64(p.Layer) && len(r.Lowers) > 0 && r.Lowers[0] == p.Layer:
		case p.Op == LayerReset && p.Layer == "":
		default:
			return fmt.Errorf("pending %q %q is not a move devbox records", p.Op, p.Layer)
		}
	}
	return nil
}

// FindSnapshot returns r's snapshot tag, the newest when tag is "".
func (r *Record) FindSnapshot(tag string) (Snapshot, error) {
	if len(r.Snapshots) == 0 {
		return Snapshot{}, fmt.Errorf("box %s has no snapshots (hint: devbox snapshot %s makes one)", r.Name, r.Name)
	}
	if tag == "" {
		return r.Snapshots[len(r.Snapshots)-1], nil
	}
	for _, s := range r.Snapshots {
		if s.Tag == tag {
			return s, nil
		}
	}
	return Snapshot{}, fmt.Errorf("box %s has no snapshot %q (hint: devbox inspect %s lists its snapshots)", r.Name, tag, r.Name)
}

// Complete makes the move r's record says is pending, if any, and records
// that it is done.
func (s *Store) Complete(r *Record, ops LayerOps) error {
	p := r.Pending
	if p == nil {
		return nil
	}
	var err error
	switch p.Op {
	case LayerFreeze:
		err = ops.Freeze(r.ID, p.Layer)
	case LayerReset:
		err = ops.Reset(r.ID)
	}
	if err != nil {
		return fmt.Errorf("box %s: completing an interrupted %s: %w", r.Name, p.Op, err)
	}
	r.Pending = nil
	return s.Save(r)
}

// upperEmpty reports whether box id's writable layer holds nothing (or
// does not exist yet): freezing it would add an empty layer.
func (s *Store) upperEmpty(id string) bool {
	f, err := os.Open(filepath.Join(s.BoxDir(id), "upper"))
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return err != nil && len(names) == 0
}

// freeze stacks box r's writable layer on its lowers, unless it is empty,
// and records snap (when not nil) with the new lowers in the same write.
func (s *Store) freeze(r *Record, ops LayerOps, snap *Snapshot) error {
	if _, err := os.Lstat(filepath.Join(s.BoxDir(r.ID), "rootfs-copy")); err == nil {
		return fmt.Errorf("box %s runs on a copy of its image (the kernel refused overlayfs): it cannot be frozen (hint: devbox doctor)", r.Name)
	}
	if err := s.Complete(r, ops); err != nil {
		return err
	}
	if len(r.Lowers) >= 400 {
		return fmt.Errorf("box %s stacks %d layers, near the kernel's limit (hint: devbox commit it into an image and create a new box from that)", r.Name, len(r.Lowers))
	}
	moved := !s.upperEmpty(r.ID)
	if moved {
		layer := ops.NewLayer()
		r.Lowers = append([]string{layer}, r.Lowers...)
		r.Pending = &Pending{Op: LayerFreeze, Layer: layer}
	}
	if snap != nil {
		snap.Lowers = slices.Clone(r.Lowers)
		r.Snapshots = append(r.Snapshots, *snap)
	}
	if !moved && snap == nil {
		return nil
	}
	// The record first: a devbox killed after this line leaves a pending
	// move that the next command completes; GC keeps the layer meanwhile.
	if err := s.Save(r); err != nil {
		return err
	}
	return s.Complete(r, ops)
}

// TakeSnapshot freezes stopped box r and records snapshot tag ("" picks
// the next free "snapN").
func (s *Store) TakeSnapshot(r *Record, tag string, ops LayerOps) (Snapshot, error) {
	if tag == "" {
		for n := len(r.Snapshots) + 1; ; n++ {
			tag = fmt.Sprintf("snap%d", n)
			if _, err := r.FindSnapshot(tag); err != nil {
				break
			}
		}
	}
	if err := CheckTag(tag); err != nil {
		return Snapshot{}, err
	}
	if _, err := r.FindSnapshot(tag); err == nil {
		return Snapshot{}, fmt.Errorf("box %s already has a snapshot %q (hint: choose another tag, or devbox snapshot --rm %s %s first)", r.Name, tag, r.Name, tag)
	}
	if len(r.Snapshots) >= MaxSnapshots {
		return Snapshot{}, fmt.Errorf("box %s has %d snapshots, the most it may have (hint: devbox snapshot --rm %s TAG)", r.Name, len(r.Snapshots), r.Name)
	}
	snap := &Snapshot{Tag: tag, Created: time.Now().UTC()}
	if err := s.freeze(r, ops, snap); err != nil {
		return Snapshot{}, err
	}
	return r.Snapshots[len(r.Snapshots)-1], nil
}

// DropSnapshot forgets snapshot tag of r; its layers stay while r (or a
// clone) stacks them, and are garbage (devbox prune) once nothing does.
func (s *Store) DropSnapshot(r *Record, tag string) error {
	if _, err := r.FindSnapshot(tag); err != nil || tag == "" {
		return err
	}
	r.Snapshots = slices.DeleteFunc(r.Snapshots, func(s Snapshot) bool { return s.Tag == tag })
	return s.Save(r)
}

// Rollback returns stopped box r to its snapshot tag (the newest when
// ""): its lowers become the snapshot's and what was written since is
// discarded. Its snapshots stay (a rollback to a later one works too).
func (s *Store) Rollback(r *Record, tag string, ops LayerOps) (Snapshot, error) {
	if err := s.Complete(r, ops); err != nil {
		return Snapshot{}, err
	}
	snap, err := r.FindSnapshot(tag)
	if err != nil {
		return Snapshot{}, err
	}
	r.Lowers = slices.Clone(snap.Lowers)
	r.Pending = &Pending{Op: LayerReset}
	if err := s.Save(r); err != nil {
		return Snapshot{}, err
	}
	return snap, s.Complete(r, ops)
}

// Clone freezes stopped box r and creates box name over the same layers:
// nothing is copied. The clone has r's settings (home, volumes, network,
// limits, environment; its hostname is its name when r's was r's name),
// its provisioning state and no snapshots. The caller holds the "boxes"
// lock and r's lock.
func (s *Store) Clone(r *Record, name, newID string, ops LayerOps) (*Record, error) {
	if _, err := s.Find(name); err == nil {
		return nil, fmt.Errorf("a box named %q already exists (hint: choose another name, or devbox rm %s)", name, name)
	}
	if err := s.freeze(r, ops, nil); err != nil {
		return nil, err
	}
	c := *r
	c.ID, c.Name, c.Created = newID, name, time.Now().UTC()
	if r.Hostname == r.Name {
		c.Hostname = name
	}
	c.Lowers = slices.Clone(r.Lowers)
	c.Snapshots, c.Pending, c.Problem = nil, nil, nil
	c.Volumes = slices.Clone(r.Volumes)
	c.Env = slices.Clone(r.Env)
	if err := s.Create(&c); err != nil {
		return nil, err
	}
	if c.Provision != nil && !c.NoProvision {
		if err := s.SaveProvision(&c); err != nil {
			return nil, err
		}
	}
	return &c, nil
}
