package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Problem is damage devbox verify found. Garbage (what GC removes) is not
// a problem.
type Problem struct {
	Kind  string `json:"kind"`  // "index", "blob", "layer", "image", "box"
	Name  string `json:"name"`  // the digest, chain ID, reference or box name
	Issue string `json:"issue"` // what is wrong
	// Repair says what --repair does about it ("" when it cannot: the
	// hint in Issue says what to do).
	Repair string `json:"repair,omitempty"`
	// Pull is the reference to pull again once repaired (images).
	Pull string `json:"pull,omitempty"`
}

// VerifyReport is what Verify checked and found.
type VerifyReport struct {
	Images   int       `json:"images"`
	Blobs    int       `json:"blobs"`
	Layers   int       `json:"layers"`
	Problems []Problem `json:"problems"`
	// Unmarked counts layers without a completion marker: unpacked by a
	// devbox older than markers, they cannot be checked (not a problem; a
	// crash never leaves a layer without its marker).
	Unmarked int `json:"unmarked"`
	// Snapshots counts layers that are frozen writable layers of boxes
	// (devbox snapshot, clone), among Layers.
	Snapshots int `json:"snapshots"`
	// Garbage is what a GC would remove (not damage).
	Garbage      int   `json:"garbage"`
	GarbageBytes int64 `json:"garbageBytes"`
	// Repaired lists what --repair did; PullAgain the images it untagged,
	// to pull again.
	Repaired  []string `json:"repaired,omitempty"`
	PullAgain []string `json:"pullAgain,omitempty"`

	badBlobs  []string
	badLayers []string
	badImages []string
}

// Repair actions.
const (
	repairRemove = "remove"
	repairUntag  = "untag"
)

// Verify checks the store: it rehashes every blob, checks that every
// unpacked layer is a directory with its completion marker, and that every
// image's manifest, config, layer blobs and unpacked layers are present
// and intact. It holds gc.lock shared, so no collection runs meanwhile.
func (s *Store) Verify() (*VerifyReport, error) {
	unlockGC, err := s.GCLock(false)
	if err != nil {
		return nil, err
	}
	defer unlockGC()
	return s.verify()
}

func (s *Store) verify() (*VerifyReport, error) {
	rep := &VerifyReport{Problems: []Problem{}}
	r, err := openRoot(s.Root)
	if err != nil {
		return nil, err
	}
	defer r.close()

	// Blobs, rehashed in parallel.
	names, err := r.names(kindDirs[KindBlob])
	if err != nil {
		return nil, err
	}
	rep.Blobs = len(names)
	badBlob := map[string]string{}
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				if why := r.checkBlob(name); why != "" {
					mu.Lock()
					badBlob[name] = why
					mu.Unlock()
				}
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	for _, n := range names {
		if why, bad := badBlob[n]; bad {
			rep.Problems = append(rep.Problems, Problem{Kind: KindBlob, Name: n, Issue: why, Repair: repairRemove})
			rep.badBlobs = append(rep.badBlobs, n)
		}
	}

	// Layers: a directory with a marker that names it.
	layers, err := r.names(kindDirs[KindLayer])
	if err != nil {
		return nil, err
	}
	rep.Layers = len(layers)
	badLayer := map[string]bool{}
	for _, name := range layers {
		why := ""
		var st unix.Stat_t
		switch {
		case !isHex64(name):
			why = "not a layer name"
		case r.lstat(kindDirs[KindLayer], name, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR:
			why = "not a directory"
		default:
			mk, err := s.readMarker(r, name)
			switch {
			case errors.Is(err, unix.ENOENT):
				rep.Unmarked++
			case err == nil && mk.Box != "":
				rep.Snapshots++
			case err != nil:
				why = "its completion marker is damaged: " + err.Error()
			}
		}
		if why != "" {
			badLayer[name] = true
			rep.badLayers = append(rep.badLayers, name)
			rep.Problems = append(rep.Problems, Problem{Kind: KindLayer, Name: name, Issue: why, Repair: repairRemove})
		}
	}

	// Images: every piece present and intact.
	im, err := s.Index()
	if err != nil {
		rep.Problems = append(rep.Problems, Problem{Kind: "index", Name: "index.json", Issue: err.Error()})
		return rep, nil
	}
	rep.Images = len(im.Manifests)
	for _, d := range im.Manifests {
		ref := d.Annotations[AnnotationRefName]
		if why := s.checkImage(d, badBlob, badLayer); why != "" {
			rep.badImages = append(rep.badImages, ref)
			rep.Problems = append(rep.Problems, Problem{Kind: "image", Name: ref, Issue: why, Repair: repairUntag, Pull: ref})
		}
	}

	if g, err := s.collect(GCOptions{DryRun: true}); err == nil {
		rep.Garbage, rep.GarbageBytes = len(g.Items), g.Bytes
	}
	return rep, nil
}

// checkImage returns what is wrong with index entry d, or "".
func (s *Store) checkImage(d v1.Descriptor, badBlob map[string]string, badLayer map[string]bool) string {
	blob := func(what string, h v1.Hash) string {
		if h.Algorithm != "sha256" || !isHex64(h.Hex) {
			return fmt.Sprintf("its %s digest %q is not a sha256 digest", what, h)
		}
		if why, bad := badBlob[h.Hex]; bad {
			return fmt.Sprintf("its %s %s is damaged (%s)", what, h, why)
		}
		if !s.HasBlob(h, -1) {
			return fmt.Sprintf("its %s %s is missing", what, h)
		}
		return ""
	}
	if why := blob("manifest", d.Digest); why != "" {
		return why
	}
	m, err := s.Manifest(d.Digest)
	if err != nil {
		return "its manifest cannot be read: " + err.Error()
	}
	if why := blob("config", m.Config.Digest); why != "" {
		return why
	}
	cf, err := s.ConfigFile(m.Config.Digest)
	if err != nil {
		return "its config cannot be read: " + err.Error()
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Sprintf("its config lists %d layers, its manifest %d", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	for _, l := range m.Layers {
		if why := blob("layer blob", l.Digest); why != "" {
			return why
		}
	}
	for _, c := range ChainIDs(cf.RootFS.DiffIDs) {
		if badLayer[c.Hex] {
			return fmt.Sprintf("its unpacked layer %s is damaged", c.Hex)
		}
		if !s.HasLayer(c) {
			return fmt.Sprintf("its unpacked layer %s is missing", c.Hex)
		}
	}
	return ""
}

// checkBlob rehashes blob name; it returns what is wrong, or "".
func (r *rootDir) checkBlob(name string) string {
	if !isHex64(name) {
		return "not a sha256 blob name"
	}
	b, err := r.open(kindDirs[KindBlob], name)
	if err != nil {
		return "cannot be read: " + err.Error()
	}
	defer b.Close()
	fi, err := b.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "not a regular file"
	}
	h := sha256.New()
	if _, err := io.Copy(h, b); err != nil {
		return "cannot be read: " + err.Error()
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != name {
		return "its content hashes to sha256:" + got
	}
	return ""
}

// Repair fixes what Verify found: it removes damaged blobs and layers,
// untags the images that lost a piece (pull them again: each Problem's
// Pull), then collects what nothing uses any more, and verifies again.
// It holds gc.lock exclusively.
func (s *Store) Repair(found *VerifyReport, remove Remover) (*VerifyReport, error) {
	unlockGC, err := s.GCLock(true)
	if err != nil {
		return nil, err
	}
	defer unlockGC()
	r, err := openRoot(s.Root)
	if err != nil {
		return nil, err
	}
	defer r.close()
	var done []string
	for _, b := range found.badBlobs {
		if err := r.unlink(kindDirs[KindBlob], b); err == nil {
			done = append(done, "removed blob "+b)
		}
	}
	var trees []string
	for _, l := range found.badLayers {
		trees = append(trees, filepath.Join(s.LayersDir(), l))
		_ = r.unlink(kindDirs[KindMarker], l)
	}
	if len(trees) > 0 {
		if remove == nil {
			return nil, fmt.Errorf("removing damaged layers: no remover")
		}
		if err := remove(trees); err != nil {
			return nil, fmt.Errorf("removing damaged layers: %w", err)
		}
		for _, l := range found.badLayers {
			done = append(done, "removed layer "+l)
		}
	}
	for _, ref := range found.badImages {
		if err := s.Untag(ref); err == nil {
			done = append(done, "untagged "+ref)
		}
	}
	g, err := s.collect(GCOptions{Remove: remove})
	if err != nil {
		return nil, err
	}
	if len(g.Items) > 0 {
		done = append(done, fmt.Sprintf("removed %d entries nothing uses any more (%d bytes)", len(g.Items), g.Bytes))
	}
	rep, err := s.verify()
	if err != nil {
		return nil, err
	}
	rep.Repaired = done
	rep.PullAgain = append([]string(nil), found.badImages...)
	sort.Strings(rep.PullAgain)
	return rep, nil
}

// lstat stats name in directory rel below the root, following no link.
func (r *rootDir) lstat(rel, name string, st *unix.Stat_t) error {
	fd, err := r.openDir(rel)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fstatat(fd, name, st, unix.AT_SYMLINK_NOFOLLOW)
}

// open opens the file name in directory rel below the root for reading,
// following no link.
func (r *rootDir) open(rel, name string) (*os.File, error) {
	fd, err := r.openDir(rel)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(f), name), nil
}
