package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
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
	// Every listing and unlink below is relative to the root opened once,
	// with no symbolic link followed (remove.go).
	r, err := openRoot(s.Root)
	if err != nil {
		return st, err
	}
	defer r.close()
	if err := r.removeBlobs(blobs, &st); err != nil {
		return st, err
	}
	var doomed []string
	ents, err := r.names("layers")
	if err != nil {
		return st, err
	}
	for _, name := range ents {
		if chains[name] {
			continue
		}
		if unlockKey, ok := s.TryLockKey("layer-" + name); ok {
			doomed = append(doomed, filepath.Join(s.LayersDir(), name))
			st.Layers++
			unlockKey()
		}
	}
	stale, n := s.staleTmp(r)
	st.TmpEntries = n
	doomed = append(doomed, stale...)
	if len(doomed) > 0 && remove != nil {
		if err := remove(doomed); err != nil {
			return st, fmt.Errorf("removing unused layers: %w", err)
		}
	}
	s.pruneLocks(r)
	return st, nil
}

// removeBlobs removes the blobs not in keep, from oci/blobs/sha256
// reached without following a symbolic link.
func (r *rootDir) removeBlobs(keep map[string]bool, st *GCStats) error {
	const rel = "oci/blobs/sha256"
	fd, err := r.openDir(rel)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	defer unix.Close(fd)
	dup, err := unix.Dup(fd)
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	names, err := readNames(dup, rel)
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	for _, name := range names {
		if keep[name] {
			continue
		}
		var fst unix.Stat_t
		if unix.Fstatat(fd, name, &fst, unix.AT_SYMLINK_NOFOLLOW) == nil && fst.Mode&unix.S_IFMT == unix.S_IFREG {
			st.BlobBytes += fst.Size
		}
		if unix.Unlinkat(fd, name, 0) == nil {
			st.Blobs++
		}
	}
	return nil
}

// pruneLocks removes per-blob and per-layer lock files nobody holds. Every
// pull holds gc.lock shared, so with it held exclusively no process can be
// about to take one of these locks.
func (s *Store) pruneLocks(r *rootDir) {
	ents, _ := r.names("locks")
	for _, name := range ents {
		// Run locks are removed by devbox prune with what the run left.
		if name == "store.lock" || name == "gc.lock" || !strings.HasSuffix(name, ".lock") || strings.HasPrefix(name, runLockPrefix) {
			continue
		}
		if unlockKey, ok := s.TryLockKey(strings.TrimSuffix(name, ".lock")); ok {
			_ = r.unlink("locks", name)
			unlockKey()
		}
	}
}

// staleTmp lists tmp/ entries whose owner lock is free: their writer died.
func (s *Store) staleTmp(r *rootDir) ([]string, int) {
	var out []string
	ents, _ := r.names("tmp")
	for _, name := range ents {
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
