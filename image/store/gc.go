package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// GCLock is held shared by every pull for its whole duration and
// exclusively by GC, so GC never removes a blob that a pull has written but
// not yet tagged.
func (s *Store) GCLock(exclusive bool) (func(), error) { return s.lockFile("gc.lock", exclusive) }

// Kinds of garbage, with the store directory each lives in: the one table
// the collector, its report and devbox df share.
const (
	KindBlob   = "blob"   // oci/blobs/sha256/<hex> no image references
	KindLayer  = "layer"  // layers/<chain> no image and no box stacks
	KindMarker = "marker" // layerinfo/<chain> without its layer
	KindTmp    = "tmp"    // tmp/ entries and index.json temporaries of dead writers
	KindBuild  = "build"  // builds/<key> whose image is no longer stored
	// Found by devbox prune, outside the image store's collector:
	KindBox     = "box"     // a stopped box (containers/<id>), removed with --force
	KindRun     = "run"     // the box directory a dead devbox run left
	KindRuntime = "runtime" // the runtime directory of a dead run
	KindTicket  = "ticket"  // a session ticket whose box is gone, or what is no ticket among them
)

var kindDirs = map[string]string{
	KindBlob:   "oci/blobs/sha256",
	KindLayer:  "layers",
	KindMarker: "layerinfo",
	KindTmp:    "tmp",
	KindBuild:  buildsDir,
}

// Garbage is one entry the collector removes, or would remove in a dry run.
type Garbage struct {
	Kind string `json:"kind"`
	Name string `json:"name"` // the entry's name in its directory
	Path string `json:"path"`
	// Size is its disk usage in bytes (a layer's is the size of its
	// files' contents, recorded when it was unpacked).
	Size int64 `json:"size"`
}

// GCReport lists what a collection removed (or would remove).
type GCReport struct {
	Items []Garbage `json:"items"`
	Bytes int64     `json:"bytes"`
}

// Count returns how many items of kind the report holds.
func (r GCReport) Count(kind string) int {
	n := 0
	for _, g := range r.Items {
		if g.Kind == kind {
			n++
		}
	}
	return n
}

// Remover deletes trees owned by subordinate ids; the caller runs it inside
// the user namespace (see rootless). It receives absolute paths under the
// store's layers/, tmp/ and containers/ directories.
type Remover func(paths []string) error

// GCOptions tune a collection.
type GCOptions struct {
	// DryRun only reports.
	DryRun bool
	// Remove removes layer and temporary trees; without it they stay.
	Remove Remover
	// IgnoreBoxes are box directories (ids) whose references do not count:
	// `devbox prune --dry-run` asks what would go with the boxes it would
	// remove.
	IgnoreBoxes map[string]bool
	// only restricts the sweep to what a failed pull created (Abandon).
	only *Created
}

// GC is the mark-and-sweep collector behind rmi, image prune and prune.
// Under gc.lock (exclusive: no pull runs) and store.lock it marks every
// blob and layer an index entry references and every layer a box record
// (containers/<id>/box.json) or a run's spec (spec.json) stacks, then
// removes everything else: blobs, layers and their markers, temporary
// entries whose lock is free, index.json temporaries, and lock files of
// blobs, layers and removed boxes that nobody holds.
func (s *Store) GC(opts GCOptions) (GCReport, error) {
	unlockGC, err := s.GCLock(true)
	if err != nil {
		return GCReport{}, err
	}
	defer unlockGC()
	return s.collect(opts)
}

// collect is GC with gc.lock held exclusively (or, for a dry run, not).
func (s *Store) collect(opts GCOptions) (GCReport, error) {
	var rep GCReport
	unlock, err := s.Lock()
	if err != nil {
		return rep, err
	}
	defer unlock()
	// Every listing and unlink below is relative to the root opened once,
	// with no symbolic link followed (remove.go).
	r, err := openRoot(s.Root)
	if err != nil {
		return rep, err
	}
	defer r.close()
	m, err := s.mark(r, opts.IgnoreBoxes)
	if err != nil {
		return rep, err
	}
	only := opts.only
	add := func(kind, name string, size int64) {
		rep.Items = append(rep.Items, Garbage{Kind: kind, Name: name, Path: filepath.Join(s.Root, kindDirs[kind], name), Size: size})
		rep.Bytes += size
	}

	// Blobs: the user's own files, unlinked here.
	blobs, err := r.names(kindDirs[KindBlob])
	if err != nil {
		return rep, err
	}
	for _, name := range blobs {
		if m.blobs[name] || only != nil && !only.hasBlob(name) {
			continue
		}
		add(KindBlob, name, r.usage(kindDirs[KindBlob], name))
	}

	// Layers, never one whose lock is held (being unpacked).
	var trees []string
	layers, err := r.names(kindDirs[KindLayer])
	if err != nil {
		return rep, err
	}
	present := map[string]bool{}
	for _, name := range layers {
		present[name] = true
		if m.chains[name] || only != nil && !only.hasChain(name) {
			continue
		}
		if !s.lockFree("layer-" + name) {
			continue
		}
		size := int64(-1)
		if mk, err := s.readMarker(r, name); err == nil {
			size = mk.Bytes
		}
		if size < 0 {
			size = r.usage(kindDirs[KindLayer], name)
		}
		add(KindLayer, name, size)
		trees = append(trees, filepath.Join(s.LayersDir(), name))
	}
	// Markers whose layer is gone or going.
	markers, _ := r.names(kindDirs[KindMarker])
	for _, name := range markers {
		chain := strings.TrimPrefix(name, ".") // a temporary: .<chain>-*
		chain, _, _ = strings.Cut(chain, "-")
		if m.chains[chain] && present[chain] && !strings.HasPrefix(name, ".") || only != nil && !only.hasChain(chain) {
			continue
		}
		if s.lockFree("layer-" + chain) {
			add(KindMarker, name, r.usage(kindDirs[KindMarker], name))
		}
	}
	// Temporaries of writers that are gone.
	for _, name := range s.staleTmp(r) {
		if only != nil && !only.hasTmp(name) {
			continue
		}
		add(KindTmp, name, r.usage(kindDirs[KindTmp], name))
		if strings.HasPrefix(name, "layer-") || !isUserFile(r, kindDirs[KindTmp], name) {
			trees = append(trees, filepath.Join(s.TmpDir(), name))
		}
	}
	if only == nil {
		// index.json and oci-layout temporaries: their writers hold
		// store.lock, which is ours now.
		ociNames, _ := r.names("oci")
		for _, name := range ociNames {
			if strings.HasPrefix(name, ".index.json-") || strings.HasPrefix(name, ".oci-layout-") {
				rep.Items = append(rep.Items, Garbage{Kind: KindTmp, Name: name, Path: filepath.Join(s.ociDir(), name), Size: r.usage("oci", name)})
				rep.Bytes += rep.Items[len(rep.Items)-1].Size
			}
		}
		for _, name := range staleBuilds(r, m.images) {
			add(KindBuild, name, r.usage(buildsDir, name))
		}
	}
	sort.SliceStable(rep.Items, func(i, j int) bool { return rep.Items[i].Kind < rep.Items[j].Kind })
	if opts.DryRun {
		return rep, nil
	}

	// Sweep: the user's own files, then the trees (in the user
	// namespace), then the markers, which go only once their layer has.
	for _, g := range rep.Items {
		switch {
		case g.Kind == KindBlob:
			_ = r.unlink(kindDirs[g.Kind], g.Name)
		case g.Kind == KindTmp && filepath.Dir(g.Path) == s.ociDir():
			_ = r.unlink("oci", g.Name)
		case g.Kind == KindTmp:
			_ = r.unlink(kindDirs[KindTmp], g.Name) // a file; trees go below
		case g.Kind == KindBuild:
			_ = r.unlink(buildsDir, g.Name) // a link goes as a link
		}
	}
	if len(trees) > 0 {
		if opts.Remove == nil {
			return rep, errors.New("removing unused layers: no remover")
		}
		if err := opts.Remove(trees); err != nil {
			return rep, fmt.Errorf("removing unused layers: %w", err)
		}
	}
	for _, g := range rep.Items {
		if g.Kind == KindMarker {
			_ = r.unlink(kindDirs[g.Kind], g.Name)
		}
	}
	s.pruneLocks(r, m, only)
	return rep, nil
}

// marks is what the mark phase found in use.
type marks struct {
	blobs, chains map[string]bool
	boxes         map[string]bool // entries of containers/
	images        map[string]bool // the index's manifest digests (sha256:<hex>)
}

// mark collects the blobs and chains every index entry references and the
// layers every box record and run spec stacks. An index that cannot be read
// stops the collection: without it nothing is known to be unused.
func (s *Store) mark(r *rootDir, ignoreBoxes map[string]bool) (*marks, error) {
	m := &marks{blobs: map[string]bool{}, chains: map[string]bool{}, boxes: map[string]bool{}, images: map[string]bool{}}
	im, err := s.Index()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		m.blobs[d.Digest.Hex] = true
		m.images[d.Digest.String()] = true
		man, err := s.Manifest(d.Digest)
		if err != nil {
			continue // damaged entry: devbox verify reports it
		}
		m.blobs[man.Config.Digest.Hex] = true
		for _, l := range man.Layers {
			m.blobs[l.Digest.Hex] = true
		}
		if cf, err := s.ConfigFile(man.Config.Digest); err == nil {
			for _, c := range ChainIDs(cf.RootFS.DiffIDs) {
				m.chains[c.Hex] = true
			}
		}
	}
	boxes, err := r.names("containers")
	if err != nil {
		// Without the box records nothing is known to be unused.
		return nil, fmt.Errorf("%w (hint: %s must be a directory of the store: move it away and run devbox prune again)", err, s.ContainersDir())
	}
	for _, id := range boxes {
		m.boxes[id] = true
		if ignoreBoxes[id] {
			continue
		}
		for _, c := range r.boxLowers(id) {
			m.chains[c] = true
		}
	}
	return m, nil
}

// maxRecord bounds what is read of a box record or run spec.
const maxRecord = 1 << 20

// boxLowers returns the chain IDs box directory id stacks: the lowers of
// its record (box.json, a persistent box, started or not, with those of
// its snapshots) and of its
// spec (spec.json, written by every start and every run before its init
// runs). Both are input: only well-formed layer names count, and a record
// that cannot be read protects nothing (such a box never starts).
func (r *rootDir) boxLowers(id string) []string {
	var out []string
	for _, f := range []string{"box.json", "spec.json"} {
		b, err := r.readFile(filepath.Join("containers", id, f), maxRecord)
		if err != nil {
			continue
		}
		// A box record also names the layers of its snapshots (they
		// stay while the box does) and a frozen layer whose move an
		// interrupted devbox left pending (runtime/box).
		var rec struct {
			Lowers    []string `json:"lowers"`
			Snapshots []struct {
				Lowers []string `json:"lowers"`
			} `json:"snapshots"`
			Pending *struct {
				Layer string `json:"layer"`
			} `json:"pending"`
		}
		if json.Unmarshal(b, &rec) != nil {
			continue
		}
		all := rec.Lowers
		for _, sn := range rec.Snapshots {
			all = append(all, sn.Lowers...)
		}
		if rec.Pending != nil {
			all = append(all, rec.Pending.Layer)
		}
		for _, l := range all {
			// box.json has chain IDs, spec.json the layer directories.
			if c := filepath.Base(l); isHex64(c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// pruneLocks removes per-blob and per-layer lock files nobody holds, and
// the lock of a box whose directory is gone (devbox rm leaves it). Every
// pull holds gc.lock shared, so with it held exclusively no process can be
// about to take a blob or layer lock; a box's lock is taken only while its
// directory exists.
func (s *Store) pruneLocks(r *rootDir, m *marks, only *Created) {
	ents, _ := r.names("locks")
	for _, name := range ents {
		key, ok := strings.CutSuffix(name, ".lock")
		if !ok {
			continue
		}
		kind, id, _ := strings.Cut(key, "-")
		switch {
		case kind == "blob" && (only == nil || only.hasBlob(id)):
		case kind == "layer" && (only == nil || only.hasChain(id)):
		case kind == "box" && only == nil && !m.boxes[id]:
		default:
			// store.lock, gc.lock, boxes.lock, run locks (devbox prune
			// removes those with what the run left) and others.
			continue
		}
		if unlockKey, ok := s.TryLockKey(key); ok {
			_ = r.unlink("locks", name)
			unlockKey()
		}
	}
}

// staleTmp lists tmp/ entries whose owner lock is free: their writer died.
func (s *Store) staleTmp(r *rootDir) []string {
	var out []string
	ents, _ := r.names("tmp")
	for _, name := range ents {
		// blob-<hex>-<rand> and layer-<hex>-<rand>
		parts := strings.SplitN(name, "-", 3)
		if len(parts) != 3 {
			out = append(out, name)
			continue
		}
		if s.lockFree(parts[0] + "-" + parts[1]) {
			out = append(out, name)
		}
	}
	return out
}

// lockFree reports whether nobody holds the lock named key, without
// creating its file (a missing lock file is a free lock).
func (s *Store) lockFree(key string) bool {
	fd, err := unix.Open(filepath.Join(s.locksDir(), key+".lock"), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return true
	}
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil
}

// isUserFile reports whether name in rel is a regular file or link (which
// the user unlinks directly), not a directory (a tree for the Remover).
func isUserFile(r *rootDir, rel, name string) bool {
	fd, err := r.openDir(rel)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR
}

// Created records what one pull wrote into the store, so that a failed
// pull can remove it again (Abandon). It is safe for concurrent use.
type Created struct {
	mu     sync.Mutex
	blobs  map[string]bool
	chains map[string]bool
}

func (c *Created) addBlob(hex string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blobs == nil {
		c.blobs = map[string]bool{}
	}
	c.blobs[hex] = true
}

// ExpectLayers records layers the pull is about to unpack (in the unpack
// stage, whose store is not this one).
func (c *Created) ExpectLayers(chains []v1.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chains == nil {
		c.chains = map[string]bool{}
	}
	for _, h := range chains {
		c.chains[h.Hex] = true
	}
}

func (c *Created) hasBlob(hex string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blobs[hex]
}

func (c *Created) hasChain(hex string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chains[hex]
}

// hasTmp reports whether tmp/ entry name (blob-<hex>-*, layer-<hex>-*) is
// one of the pull's own.
func (c *Created) hasTmp(name string) bool {
	parts := strings.SplitN(name, "-", 3)
	if len(parts) != 3 {
		return false
	}
	return parts[0] == "blob" && c.hasBlob(parts[1]) || parts[0] == "layer" && c.hasChain(parts[1])
}

func (c *Created) empty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.blobs) == 0 && len(c.chains) == 0
}

// Tracked returns a view of the store that records in c every blob it
// writes (for a pull: image.Pull).
func (s *Store) Tracked() (*Store, *Created) {
	c := &Created{}
	return &Store{Root: s.Root, created: c}, c
}

// Abandon removes what a failed pull created (c) and that nothing
// references: its blobs, the layers it expected to unpack, their markers,
// temporaries and locks. It needs gc.lock exclusively: the caller has let
// its own shared hold go. When another pull or a collection holds it, it
// does nothing; what stays is garbage the next GC sweeps.
func (s *Store) Abandon(c *Created, remove Remover) (GCReport, error) {
	if c == nil || c.empty() {
		return GCReport{}, nil
	}
	unlock, ok := s.TryLockKey("gc")
	if !ok {
		return GCReport{}, nil
	}
	defer unlock()
	return s.collect(GCOptions{Remove: remove, only: c})
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

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
