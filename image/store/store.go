package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/safefile"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// Annotation keys written on index entries.
const (
	AnnotationRefName = "org.opencontainers.image.ref.name"
	AnnotationPulled  = "io.devbox.image.pulled"
	AnnotationSource  = "io.devbox.image.source-digest"
	AnnotationDigest  = "io.devbox.image.manifest-digest"
	AnnotationFrom    = "io.devbox.image.from"
)

// Origin records where a stored image came from.
type Origin struct {
	ManifestDigest string // the registry's digest of the platform manifest
	SourceDigest   string // what the reference resolved to (an index, for multi-arch images)
	From           string // the reference actually pulled (a mirror or the origin)
}

// ErrNotFound is returned for an unknown image.
var ErrNotFound = errors.New("image not known")

// Store is an open store. It is safe for concurrent use by several
// processes; within one process, use one Store per goroutine group.
type Store struct {
	Root string
	// created, when set (Tracked), records the blobs this view writes.
	created *Created
}

// Open creates the store directories as needed (0700, parents too), after
// checking that the store is the user's alone (checkChain); a store that
// is not is refused with ErrUnsafeStore.
func Open(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("the store %q is not an absolute path (hint: give --store, DEVBOX_STORE or [store] root an absolute path)", root)
	}
	s := &Store{Root: filepath.Clean(root)}
	// Checked before anything is written, and again once what was missing
	// exists: someone may have made it first under a shared /tmp.
	complete, err := checkOwnership(s.Root, os.Getuid())
	if err != nil {
		return nil, err
	}
	if !complete {
		if err := os.MkdirAll(s.Root, 0o700); err != nil {
			return nil, storeErr("creating store directory", err, root)
		}
		if _, err := checkOwnership(s.Root, os.Getuid()); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{s.ociDir(), filepath.Join(s.ociDir(), "blobs", "sha256"), s.LayersDir(), s.layerInfoDir(), s.TmpDir(), s.locksDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, storeErr("creating store directory", err, root)
		}
	}
	if err := unix.Access(root, unix.W_OK); err != nil {
		return nil, storeErr("opening store", err, root)
	}
	markTopDir(s.TmpDir())
	if _, err := os.Stat(filepath.Join(s.ociDir(), "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		unlock, err := s.Lock()
		if err != nil {
			return nil, err
		}
		defer unlock()
		if err := atomicWrite(filepath.Join(s.ociDir(), "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return nil, storeErr("initialising OCI layout", err, root)
		}
		if _, err := os.Stat(s.indexPath()); errors.Is(err, fs.ErrNotExist) {
			if err := s.writeIndex(&v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func storeErr(what string, err error, path string) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%s: %w (hint: free disk space on the filesystem holding %s; devbox doctor shows what is free)", what, err, path)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%s: %w (hint: the store %s must be writable by you; choose another with --store or DEVBOX_STORE; devbox doctor checks it)", what, err, path)
	case what == "creating store directory" && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR)):
		return fmt.Errorf("%s: %w (hint: the store %s cannot be created there; choose another with --store or DEVBOX_STORE; devbox doctor checks it)", what, err, path)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *Store) ociDir() string    { return filepath.Join(s.Root, "oci") }
func (s *Store) indexPath() string { return filepath.Join(s.ociDir(), "index.json") }

// IndexPath is index.json: it changes whenever an image is added, replaced
// or removed.
func (s *Store) IndexPath() string { return s.indexPath() }
func (s *Store) locksDir() string  { return filepath.Join(s.Root, "locks") }

// OCIDir is the OCI image layout directory (for skopeo/umoci: oci:DIR:REF).
func (s *Store) OCIDir() string { return s.ociDir() }

// LayersDir holds the unpacked layers.
func (s *Store) LayersDir() string { return filepath.Join(s.Root, "layers") }

// TmpDir holds work in progress.
func (s *Store) TmpDir() string { return filepath.Join(s.Root, "tmp") }

// BlobPath is where blob h lives.
func (s *Store) BlobPath(h v1.Hash) string {
	return filepath.Join(s.ociDir(), "blobs", h.Algorithm, h.Hex)
}

// LayerDir is where the layer with chain ID chain is unpacked.
func (s *Store) LayerDir(chain v1.Hash) string { return filepath.Join(s.LayersDir(), chain.Hex) }

// HasBlob reports whether blob h is complete in the store.
func (s *Store) HasBlob(h v1.Hash, size int64) bool {
	fi, err := os.Lstat(s.BlobPath(h)) // a link is no blob (ReadBlob)
	return err == nil && fi.Mode().IsRegular() && (size < 0 || fi.Size() == size)
}

// HasLayer reports whether the layer with chain ID chain is unpacked.
func (s *Store) HasLayer(chain v1.Hash) bool {
	fi, err := os.Lstat(s.LayerDir(chain))
	return err == nil && fi.IsDir()
}

// Lock takes the store-wide lock that guards index.json and GC.
func (s *Store) Lock() (func(), error) { return s.lockFile("store.lock", true) }

// RLock takes the store-wide lock shared (readers, pulls in progress).
func (s *Store) RLock() (func(), error) { return s.lockFile("store.lock", false) }

// LockKey takes an exclusive lock named key (a blob digest or chain ID).
func (s *Store) LockKey(key string) (func(), error) { return s.lockFile(key+".lock", true) }

// TryLockKey takes the lock named key if it is free.
func (s *Store) TryLockKey(key string) (func(), bool) {
	f, err := openLock(filepath.Join(s.locksDir(), key+".lock"))
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}

func (s *Store) lockFile(name string, exclusive bool) (func(), error) {
	f, err := openLock(filepath.Join(s.locksDir(), name))
	if err != nil {
		return nil, storeErr("opening lock", err, s.Root)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	err = safefile.Flock(int(f.Fd()), how)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}

// WriteBlob stores the content of r as blob h. The content is hashed while
// it is written to a temporary file and renamed into place only when the
// digest (and size, when size >= 0) match. A blob already present is not
// written again. Concurrent writers of the same blob serialise on its lock;
// the second finds it present.
func (s *Store) WriteBlob(h v1.Hash, size int64, r io.Reader) (written bool, err error) {
	return s.WriteBlobFeed(h, size, r, nil)
}

// WriteBlobFeed is WriteBlob reporting to feed (if not nil), which ends when
// the blob is in the store, whoever wrote it, or when WriteBlobFeed fails.
func (s *Store) WriteBlobFeed(h v1.Hash, size int64, r io.Reader, feed *BlobFeed) (written bool, err error) {
	if feed != nil {
		defer func() {
			if err != nil {
				feed.Fail(err)
			}
		}()
	}
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return false, fmt.Errorf("unsupported digest %q", h.String())
	}
	present := func() (bool, error) {
		if feed != nil {
			return false, s.FeedStored(feed, h, size)
		}
		return false, nil
	}
	if s.HasBlob(h, size) {
		return present()
	}
	unlock, err := s.LockKey("blob-" + h.Hex)
	if err != nil {
		return false, err
	}
	defer unlock()
	if s.HasBlob(h, size) {
		return present()
	}
	if s.created != nil {
		// From here on the blob, its lock and its temporary file are
		// this writer's own, finished or not.
		s.created.addBlob(h.Hex)
	}
	// Debris of an earlier, killed attempt at this blob.
	if old, _ := filepath.Glob(filepath.Join(s.TmpDir(), "blob-"+h.Hex+"-*")); len(old) > 0 {
		for _, o := range old {
			_ = os.Remove(o)
		}
	}
	f, err := os.CreateTemp(s.TmpDir(), "blob-"+h.Hex+"-")
	if err != nil {
		return false, storeErr("writing blob", err, s.Root)
	}
	tmp := f.Name()
	var rf *os.File // the feed's reader of the temporary file, owned by the feed
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if feed != nil {
		if rf, err = os.Open(tmp); err != nil {
			return false, storeErr("writing blob", err, s.Root)
		}
		feed.start(rf)
	}
	if size >= 0 {
		r = io.LimitReader(r, size+1)
	}
	hasher := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, err = f.Write(buf[:m]); err != nil {
				return false, storeErr("writing blob "+h.String(), err, s.Root)
			}
			hasher.Write(buf[:m])
			n += int64(m)
			if feed != nil {
				feed.advance(n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			return false, storeErr("writing blob "+h.String(), err, s.Root)
		}
	}
	if size >= 0 && n != size {
		return false, fmt.Errorf("blob %s: got %d bytes, want %d", h, n, size)
	}
	if got := hex.EncodeToString(hasher.Sum(nil)); got != h.Hex {
		return false, fmt.Errorf("blob %s: digest mismatch, got sha256:%s", h, got)
	}
	if err = f.Sync(); err != nil {
		return false, storeErr("writing blob", err, s.Root)
	}
	if err = f.Close(); err != nil {
		return false, storeErr("writing blob", err, s.Root)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return false, err
	}
	if err = os.Rename(tmp, s.BlobPath(h)); err != nil {
		return false, storeErr("storing blob", err, s.Root)
	}
	if feed != nil {
		feed.stored(rf, n)
	}
	return true, nil
}

// WriteBlobBytes stores b (manifests and configs).
func (s *Store) WriteBlobBytes(b []byte) (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return v1.Hash{}, err
	}
	_, err = s.WriteBlob(h, int64(len(b)), bytes.NewReader(b))
	return h, err
}

// ReadBlob returns the content of a small blob.
func (s *Store) ReadBlob(h v1.Hash) ([]byte, error) {
	// Input like every file of the store (a dev box writes it when the
	// store is under the home): a regular file reached without following
	// a link, of a document's size at most, never a link to /dev/zero or
	// a fifo that would grow or stall every run and listing.
	b, err := safefile.ReadFile(s.BlobPath(h), maxStoredDocument)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", h, err)
	}
	return b, nil
}

// Index reads index.json.
func (s *Store) Index() (*v1.IndexManifest, error) {
	// A regular file, no link, bounded: as ReadBlob.
	b, err := safefile.ReadFile(s.indexPath(), maxStoredDocument)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
		}
		return nil, fmt.Errorf("reading image index: %w", err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("reading image index %s: %w (hint: the store is damaged; move it away and pull again)", s.indexPath(), err)
	}
	return im, nil
}

func (s *Store) writeIndex(im *v1.IndexManifest) error {
	b, err := json.Marshal(im)
	if err != nil {
		return err
	}
	// Temporaries of a writer killed before its rename: the caller holds
	// store.lock, so none is in use.
	if old, _ := filepath.Glob(filepath.Join(s.ociDir(), ".index.json-*")); len(old) > 0 {
		for _, o := range old {
			_ = os.Remove(o)
		}
	}
	if err := atomicWrite(s.indexPath(), b); err != nil {
		return storeErr("writing image index", err, s.Root)
	}
	return nil
}

// Tag records desc (a manifest already in the store) under ref, replacing
// what ref named before. The caller must not hold the store lock.
func (s *Store) Tag(ref string, desc v1.Descriptor, o Origin) error {
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	im, err := s.Index()
	if err != nil {
		return err
	}
	kept := im.Manifests[:0]
	for _, d := range im.Manifests {
		if d.Annotations[AnnotationRefName] != ref {
			kept = append(kept, d)
		}
	}
	desc.Annotations = map[string]string{
		AnnotationRefName: ref,
		AnnotationPulled:  time.Now().UTC().Format(time.RFC3339),
	}
	for k, v := range map[string]string{AnnotationDigest: o.ManifestDigest, AnnotationSource: o.SourceDigest, AnnotationFrom: o.From} {
		if v != "" {
			desc.Annotations[k] = v
		}
	}
	im.Manifests = append(kept, desc)
	sort.SliceStable(im.Manifests, func(i, j int) bool {
		return im.Manifests[i].Annotations[AnnotationRefName] < im.Manifests[j].Annotations[AnnotationRefName]
	})
	return s.writeIndex(im)
}

// Image is one tagged image in the store.
type Image struct {
	Ref          string    `json:"ref"`
	ID           string    `json:"id"`     // digest of the stored OCI manifest
	Digest       string    `json:"digest"` // the registry's manifest digest
	SourceDigest string    `json:"sourceDigest,omitempty"`
	From         string    `json:"from,omitempty"`
	Size         int64     `json:"size"` // compressed size of config and layers
	Pulled       time.Time `json:"pulled"`
	Created      time.Time `json:"created,omitzero"`
	Platform     string    `json:"platform,omitempty"`
}

// Images lists the tagged images.
func (s *Store) Images() ([]Image, error) {
	out, err := s.entries()
	if err != nil {
		return nil, err
	}
	for i := range out {
		s.details(&out[i])
	}
	return out, nil
}

// entries lists the index's images with what the index itself says (no
// size, creation time or platform: those need their blobs).
func (s *Store) entries() ([]Image, error) {
	im, err := s.Index()
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, d := range im.Manifests {
		img := Image{Ref: d.Annotations[AnnotationRefName], ID: d.Digest.String(), Digest: d.Annotations[AnnotationDigest],
			SourceDigest: d.Annotations[AnnotationSource], From: d.Annotations[AnnotationFrom]}
		if img.Digest == "" {
			img.Digest = img.ID
		}
		img.Pulled, _ = time.Parse(time.RFC3339, d.Annotations[AnnotationPulled])
		out = append(out, img)
	}
	return out, nil
}

// details fills in img's size, creation time and platform from its
// manifest and config (left empty when those cannot be read).
func (s *Store) details(img *Image) {
	h, err := v1.NewHash(img.ID)
	if err != nil {
		return
	}
	m, err := s.Manifest(h)
	if err != nil {
		return
	}
	img.Size = m.Config.Size
	for _, l := range m.Layers {
		img.Size += l.Size
	}
	if cf, err := s.ConfigFile(m.Config.Digest); err == nil {
		img.Created = cf.Created.Time
		img.Platform = cf.OS + "/" + cf.Architecture
		if cf.Variant != "" {
			img.Platform += "/" + cf.Variant
		}
	}
}

// OpenBlob opens stored blob h for reading: a regular file reached
// without following a link, as ReadBlob reads one.
func (s *Store) OpenBlob(h v1.Hash) (*os.File, error) { return safefile.Open(s.BlobPath(h)) }

// maxStoredDocument bounds a manifest or config read back from the store:
// far above any max_document_size a pull would have accepted.
const maxStoredDocument = 256 << 20

// Manifest reads and parses a manifest blob.
func (s *Store) Manifest(h v1.Hash) (*v1.Manifest, error) {
	b, err := s.ReadBlob(h)
	if err != nil {
		return nil, err
	}
	return v1.ParseManifest(bytes.NewReader(b))
}

// ConfigFile reads and parses an image config blob.
func (s *Store) ConfigFile(h v1.Hash) (*v1.ConfigFile, error) {
	b, err := s.ReadBlob(h)
	if err != nil {
		return nil, err
	}
	return v1.ParseConfigFile(bytes.NewReader(b))
}

// Lookup finds the image named ref, or whose digest (or a unique digest
// prefix of at least 4 hex digits) is ref. It reads only the index: the
// image's size, creation time and platform are left empty (Images has
// them); callers read its manifest and config themselves.
func (s *Store) Lookup(ref string) (Image, error) {
	imgs, err := s.entries()
	if err != nil {
		return Image{}, err
	}
	for _, i := range imgs {
		if i.Ref == ref {
			return i, nil
		}
	}
	hexRef := strings.TrimPrefix(ref, "sha256:")
	if len(hexRef) >= 4 && strings.Trim(hexRef, "0123456789abcdef") == "" {
		var matches []Image
		for _, i := range imgs {
			if strings.HasPrefix(strings.TrimPrefix(i.Digest, "sha256:"), hexRef) || strings.HasPrefix(strings.TrimPrefix(i.ID, "sha256:"), hexRef) {
				matches = append(matches, i)
			}
		}
		if len(matches) == 1 {
			return matches[0], nil
		}
	}
	return Image{}, fmt.Errorf("%w: %s (hint: devbox images lists what is stored)", ErrNotFound, ref)
}

// Untag removes the index entries named ref. It returns ErrNotFound when
// there is none.
func (s *Store) Untag(ref string) error {
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	im, err := s.Index()
	if err != nil {
		return err
	}
	kept := im.Manifests[:0]
	removed := 0
	for _, d := range im.Manifests {
		if d.Annotations[AnnotationRefName] == ref {
			removed++
			continue
		}
		kept = append(kept, d)
	}
	if removed == 0 {
		return fmt.Errorf("%w: %s (hint: devbox images lists what is stored)", ErrNotFound, ref)
	}
	im.Manifests = kept
	return s.writeIndex(im)
}

// ChainIDs returns the chain ID of every layer of a config's rootfs, bottom
// first: chain(1) = diffID(1), chain(n) = sha256(chain(n-1) + " " + diffID(n)).
func ChainIDs(diffIDs []v1.Hash) []v1.Hash {
	out := make([]v1.Hash, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1].String() + " " + d.String()))
		out[i] = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	}
	return out
}

// openLock opens (creating) a lock file. Lock files are shared between the
// user and the user-namespace helpers, whose root is another host uid, so
// they are made readable and writable by both; locks/ itself is 0700.
func openLock(path string) (*os.File, error) {
	f, err := safefile.OpenLock(path, 0o666)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm() != 0o666 {
		_ = f.Chmod(0o666)
	}
	return f, nil
}

func atomicWrite(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// fsTopDirFlag is FS_TOPDIR_FL, chattr's "T" attribute.
const fsTopDirFlag = 0x00020000

// markTopDir gives dir the "top of directory hierarchies" attribute of
// ext2/3/4 (chattr +T), if it can: each layer is unpacked into a directory
// of its own in tmp/, and these trees are unrelated, so the Orlov allocator
// should spread them over the block groups rather than pack each next to
// tmp/. This matters on ext4 without a journal: there the inode allocator
// skips, one by one, the inodes of its group freed in the last minutes (up to
// six), so a layer unpacked next to one just removed (devbox rmi, prune, a
// re-pull) creates every file hundreds of microseconds slower.
func markTopDir(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopDirFlag != 0 {
		return // not ext2/3/4 (or alike), or done
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsTopDirFlag))
}
