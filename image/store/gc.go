package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// GCLock is held shared by every pull for its whole duration and
// exclusively by GC, so GC never removes a blob that a pull has written but
// not yet tagged.
func (s *Store) GCLock(exclusive bool) (func(), error) { return s.lockFile("gc.lock", exclusive) }

// GCStats reports what GC removed.
type GCStats struct {
	Blobs      int   `json:"blobs"`
	BlobBytes  int64 `json:"blobBytes"`
	Layers     int   `json:"layers"`
	TmpEntries int   `json:"tmpEntries"`
}

// Remover deletes trees owned by subordinate ids; the caller runs it inside
// the user namespace (see rootless). It receives absolute paths under the
// store's layers/ and tmp/ directories.
type Remover func(paths []string) error

// GC removes blobs that no tagged image references, unpacked layers that no
// tagged image and no entry of keepChains uses, and abandoned temporary
// files.
func (s *Store) GC(keepChains []v1.Hash, remove Remover) (GCStats, error) {
	var st GCStats
	unlockGC, err := s.GCLock(true)
	if err != nil {
		return st, err
	}
	defer unlockGC()
	unlock, err := s.Lock()
	if err != nil {
		return st, err
	}
	defer unlock()

	im, err := s.Index()
	if err != nil {
		return st, err
	}
	blobs := map[string]bool{}
	chains := map[string]bool{}
	for _, c := range keepChains {
		chains[c.Hex] = true
	}
	for _, d := range im.Manifests {
		blobs[d.Digest.Hex] = true
		m, err := s.Manifest(d.Digest)
		if err != nil {
			continue // damaged entry: keep what we cannot read about
		}
		blobs[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			blobs[l.Digest.Hex] = true
		}
		if cf, err := s.ConfigFile(m.Config.Digest); err == nil {
			for _, c := range ChainIDs(cf.RootFS.DiffIDs) {
				chains[c.Hex] = true
			}
		}
	}
	blobDir := filepath.Join(s.ociDir(), "blobs", "sha256")
	ents, err := os.ReadDir(blobDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("listing blobs: %w", err)
	}
	for _, e := range ents {
		if blobs[e.Name()] {
			continue
		}
		if fi, err := e.Info(); err == nil {
			st.BlobBytes += fi.Size()
		}
		if err := os.Remove(filepath.Join(blobDir, e.Name())); err == nil {
			st.Blobs++
		}
	}
	var doomed []string
	ents, _ = os.ReadDir(s.LayersDir())
	for _, e := range ents {
		if chains[e.Name()] {
			continue
		}
		if unlockKey, ok := s.TryLockKey("layer-" + e.Name()); ok {
			doomed = append(doomed, filepath.Join(s.LayersDir(), e.Name()))
			st.Layers++
			unlockKey()
		}
	}
	stale, n := s.staleTmp()
	st.TmpEntries = n
	doomed = append(doomed, stale...)
	if len(doomed) > 0 && remove != nil {
		if err := remove(doomed); err != nil {
			return st, fmt.Errorf("removing unused layers: %w", err)
		}
	}
	s.pruneLocks()
	return st, nil
}

// pruneLocks removes per-blob and per-layer lock files nobody holds. Every
// pull holds gc.lock shared, so with it held exclusively no process can be
// about to take one of these locks.
func (s *Store) pruneLocks() {
	ents, _ := os.ReadDir(s.locksDir())
	for _, e := range ents {
		name := e.Name()
		// Run locks are removed by devbox prune with what the run left.
		if name == "store.lock" || name == "gc.lock" || !strings.HasSuffix(name, ".lock") || strings.HasPrefix(name, runLockPrefix) {
			continue
		}
		if unlockKey, ok := s.TryLockKey(strings.TrimSuffix(name, ".lock")); ok {
			_ = os.Remove(filepath.Join(s.locksDir(), name))
			unlockKey()
		}
	}
}

// staleTmp lists tmp/ entries whose owner lock is free: their writer died.
func (s *Store) staleTmp() ([]string, int) {
	var out []string
	ents, _ := os.ReadDir(s.TmpDir())
	for _, e := range ents {
		name := e.Name()
		// blob-<hex>-<rand> and layer-<hex>-<rand>
		parts := strings.SplitN(name, "-", 3)
		if len(parts) != 3 {
			out = append(out, filepath.Join(s.TmpDir(), name))
			continue
		}
		unlockKey, ok := s.TryLockKey(parts[0] + "-" + parts[1])
		if !ok {
			continue
		}
		unlockKey()
		out = append(out, filepath.Join(s.TmpDir(), name))
	}
	return out, len(out)
}

// ContainersDir holds the boxes' writable layers and specs.
func (s *Store) ContainersDir() string { return filepath.Join(s.Root, "containers") }

// CheckRemovable reports whether path may be removed by a Remover: only
// direct children of layers/, tmp/ and containers/ qualify, and only while
// that directory is a real directory of the store: a symlinked
// containers/ (or layers/, tmp/) would make the removal follow it out of
// the store, so it is refused. (os.RemoveAll itself never follows a
// symlink below the path it is given.)
func (s *Store) CheckRemovable(path string) error {
	clean := filepath.Clean(path)
	parent := filepath.Dir(clean)
	base := filepath.Base(clean)
	if (parent != s.LayersDir() && parent != s.TmpDir() && parent != s.ContainersDir()) || base == ".." || base == "." || clean != path {
		return fmt.Errorf("refusing to remove %q: not a store layer or temporary entry", path)
	}
	if fi, err := os.Lstat(parent); err != nil || !fi.IsDir() {
		return fmt.Errorf("refusing to remove %q: %s is not a directory of the store (a symbolic link?) (hint: move it away and run devbox prune again)", path, parent)
	}
	return nil
}
