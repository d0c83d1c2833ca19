package box

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/devbox-dev/devbox/export"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/runtime/agent"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/session"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Remove deletes box r's record and writable layer; a running box is
// stopped first when it has no sessions, or with force (which also stops
// a kept run whose command still runs). Its mounts (home,
// volumes) exist only in the box's own mount namespace, which is gone once
// the box is stopped, and removal runs in a fresh namespace that never
// saw them: nothing outside the box directory can be reached.
func (m *Manager) Remove(r *rbox.Record, force bool) error {
	unlock, err := m.bs.Lock("box-" + r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if run, ok := m.LiveRun(r.ID); ok {
		if !force {
			return fmt.Errorf("box %s is a devbox run in progress (hint: wait for its command to end, or devbox rm -f %s stops it)", r.Name, r.Name)
		}
		if err := m.stopRun(run); err != nil {
			return err
		}
	}
	if m.bs.Running(r.ID) {
		// A box that only waits out its grace period (no session) is
		// stopped: scripts remove a box right after using it.
		if !force {
			rep, err := agent.Call(m.bs.SocketPath(r.ID), agent.Request{Type: agent.TypeStatus}, 2*time.Second)
			if err == nil && rep.Sessions > 0 {
				return fmt.Errorf("box %s is running with %d session(s) (hint: leave them, or devbox rm -f %s ends them)", r.Name, rep.Sessions, r.Name)
			}
		}
		if err := m.Stop(r, 10*time.Second, "devbox rm"); err != nil {
			return err
		}
	}
	dir := m.bs.BoxDir(r.ID)
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		// A symlink (or a file) in place of the box directory: only the
		// entry goes, nothing it points to.
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("removing box %s: %w", r.Name, err)
		}
		return nil
	}
	m.removeCgroup(r)
	m.unexportAll(r)
	// The record goes first: a half-removed box is no longer listed.
	if err := os.Remove(filepath.Join(dir, "box.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing box %s: %w", r.Name, err)
	}
	if err := m.Remover()([]string{dir}); err != nil {
		return fmt.Errorf("removing box %s: %w", r.Name, err)
	}
	_ = os.RemoveAll(m.bs.RunDir(r.ID))
	if err := session.Forget(m.bs.RuntimeDir, m.st.Root, r.Name, r.ID); err != nil {
		m.warn("box %s: its session ticket stays until devbox prune: %v", r.Name, err)
	}
	m.sweepSnapshots(r)
	return nil
}

// sweepSnapshots removes the snapshot layers (frozen writable layers) of
// removed box r that no other box stacks (a clone keeps them), when no
// pull or collection runs; otherwise they are garbage for devbox prune.
func (m *Manager) sweepSnapshots(r *rbox.Record) {
	var layers []v1.Hash
	for _, l := range slices.Concat(r.Lowers, snapshotLowers(r)) {
		if m.st.SnapshotLayer(l) {
			layers = append(layers, v1.Hash{Algorithm: "sha256", Hex: l})
		}
	}
	if len(layers) == 0 {
		return
	}
	c := &store.Created{}
	c.ExpectLayers(layers)
	if _, err := m.st.Abandon(c, m.Remover()); err != nil {
		m.warn("box %s: its snapshot layers stay until devbox prune: %v", r.Name, err)
	}
}

func snapshotLowers(r *rbox.Record) []string {
	var out []string
	for _, s := range r.Snapshots {
		out = append(out, s.Lowers...)
	}
	return out
}

// unexportAll removes what devbox export put on the host for box r; what
// it cannot remove is named in a warning.
func (m *Manager) unexportAll(r *rbox.Record) {
	b, err := export.ForRecord(r, m.bs.BoxDir(r.ID), m.st.Root, m.st.LayersDir())
	if err == nil {
		_, err = b.Unexport("", "")
	}
	if err != nil {
		m.warn("box %s: %v", r.Name, err)
	}
}

// Stopped returns the boxes that neither run nor are a devbox run in
// progress: what prune removes.
func (m *Manager) Stopped() ([]*rbox.Record, error) {
	recs, err := m.bs.List()
	if err != nil {
		return nil, err
	}
	var stopped []*rbox.Record
	for _, r := range recs {
		if _, live := m.LiveRun(r.ID); !m.bs.Running(r.ID) && !live {
			stopped = append(stopped, r)
		}
	}
	return stopped, nil
}

// PrunePlan is what prune would remove.
type PrunePlan struct {
	// Items are the stopped boxes, run leftovers, stale runtime
	// directories, then the image data nothing would use once they are
	// gone.
	Items []store.Garbage
	// Boxes and Leftovers count the stopped boxes and run leftovers.
	Boxes, Leftovers int
	// GC is the image data's part.
	GC store.GCReport
}

// PruneDryRun lists what prune would remove of stopped (Stopped) and of
// what runs left behind, and the image data nothing would use then.
func (m *Manager) PruneDryRun(stopped []*rbox.Record) (PrunePlan, error) {
	var items []store.Garbage
	gone := map[string]bool{}
	for _, r := range stopped {
		gone[r.ID] = true
		dir := m.bs.BoxDir(r.ID)
		items = append(items, store.Garbage{Kind: store.KindBox, Name: r.Name, Path: dir, Size: store.DiskUsage(dir)})
	}
	dirs, runDirs, release := m.leftovers()
	release()
	for _, d := range dirs {
		gone[filepath.Base(d)] = true
		items = append(items, store.Garbage{Kind: store.KindRun, Name: filepath.Base(d), Path: d, Size: store.DiskUsage(d)})
	}
	for _, d := range runDirs {
		items = append(items, store.Garbage{Kind: store.KindRuntime, Name: filepath.Base(d), Path: d, Size: store.DiskUsage(d)})
	}
	if live, ok := m.liveTickets(gone); ok {
		tickets, err := session.Stale(m.bs.RuntimeDir, m.st.Root, live)
		if err != nil {
			return PrunePlan{}, err
		}
		for _, p := range tickets {
			items = append(items, store.Garbage{Kind: store.KindTicket, Name: filepath.Base(p), Path: p, Size: store.DiskUsage(p)})
		}
	}
	rep, err := m.st.GC(store.GCOptions{DryRun: true, IgnoreBoxes: gone})
	if err != nil {
		return PrunePlan{}, err
	}
	return PrunePlan{Items: append(items, rep.Items...), Boxes: len(stopped), Leftovers: len(dirs), GC: rep}, nil
}

// Prune removes stopped (Stopped), calling removed with each name once it
// is gone, then what runs left behind, then the image data nothing uses.
func (m *Manager) Prune(stopped []*rbox.Record, removed func(name string)) (store.GCReport, error) {
	for _, r := range stopped {
		if err := m.Remove(r, false); err != nil {
			return store.GCReport{}, err
		}
		removed(r.Name)
	}
	if err := m.pruneLeftovers(); err != nil {
		return store.GCReport{}, err
	}
	m.sweepTickets()
	return m.st.GC(store.GCOptions{Remove: m.Remover()})
}

// sweepTickets removes the front's session tickets of this store's boxes
// that are gone (removed by a devbox older than Forget, or whose removal
// was interrupted) and whatever else was left among them
// (session.Sweep).
func (m *Manager) sweepTickets() {
	if live, ok := m.liveTickets(nil); ok {
		if _, err := session.Sweep(m.bs.RuntimeDir, m.st.Root, live); err != nil {
			m.warn("session tickets: %v", err)
		}
	}
}

// liveTickets returns whether a session ticket names a box of this store
// that is not in gone (box ids); without the boxes' list nothing is known
// to be gone (false).
func (m *Manager) liveTickets(gone map[string]bool) (func(name, id string) bool, bool) {
	recs, err := m.bs.List()
	if err != nil {
		return nil, false
	}
	ids := map[string]string{}
	for _, r := range recs {
		ids[r.Name] = r.ID
	}
	return func(name, id string) bool { return ids[name] == id && !gone[id] }, true
}

// StopAny stops what ref names: a box (or a kept run whose command still
// runs), else a devbox run in progress by its id as devbox ps shows it;
// it returns the name to print.
func (m *Manager) StopAny(ref string) (string, error) {
	r, err := m.bs.Find(ref)
	if err != nil {
		if run, ok := m.findRun(ref); ok {
			return ref, m.stopRun(run)
		}
		return "", err
	}
	if run, ok := m.LiveRun(r.ID); ok {
		err = m.stopRun(run) // a kept run whose command still runs
	} else {
		err = m.Stop(r, 10*time.Second, "devbox stop")
	}
	return r.Name, err
}

// leftovers finds what runs left behind: for every run whose lock is free
// (its devbox is gone: finished, or killed at any moment), its box
// directory and its runtime directory; then box directories without a
// record and without a run lock (a devbox older than run locks) that are
// older than a minute and do not answer as a box. A live run's lock is
// held, so nothing of it is found. The stale runs stay locked until
// release.
func (m *Manager) leftovers() (dirs, runDirs []string, release func()) {
	stale := m.st.StaleRuns()
	release = func() {
		for _, r := range stale {
			r.Done()
		}
	}
	gone := map[string]bool{}
	for _, r := range stale {
		gone[r.ID] = true
		dir := m.bs.BoxDir(r.ID)
		if _, err := os.Lstat(filepath.Join(dir, "box.json")); err == nil {
			continue // never: run ids are not box ids
		}
		if _, err := os.Lstat(dir); err == nil {
			dirs = append(dirs, dir)
		}
		if _, err := os.Lstat(m.bs.RunDir(r.ID)); err == nil {
			runDirs = append(runDirs, m.bs.RunDir(r.ID))
		}
	}
	ents, _ := os.ReadDir(m.bs.Dir)
	for _, ent := range ents {
		id := ent.Name()
		dir := filepath.Join(m.bs.Dir, id)
		if gone[id] || m.st.HasRunLock(id) || !ent.IsDir() {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, "box.json")); err == nil {
			continue
		}
		if m.bs.Running(id) {
			continue
		}
		if fi, err := ent.Info(); err == nil && time.Since(fi.ModTime()) < time.Minute {
			continue // possibly a run that is starting right now
		}
		dirs = append(dirs, dir)
	}
	return dirs, runDirs, release
}

// pruneLeftovers removes what leftovers finds.
func (m *Manager) pruneLeftovers() error {
	dirs, runDirs, release := m.leftovers()
	defer release()
	for _, d := range runDirs {
		// The runtime directory holds the user's files only (the network
		// helper's log and sockets); RemoveAll does not follow symlinks.
		_ = os.RemoveAll(d)
	}
	if len(dirs) == 0 {
		return nil
	}
	return m.Remover()(dirs)
}

// userHome is the caller's home directory, "" when unknown.
func userHome() string {
	h, _ := os.UserHomeDir()
	return h
}
