package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Snapshot layers. A box's writable layer (containers/<id>/upper) is
// frozen by renaming it to layers/<layer> — no byte is copied — and the box
// gets a fresh, empty upper/ on top of it: the frozen layer becomes the
// top-most of the box's lowers (runtime/box records which). The files of
// an upper directory are owned by subordinate ids, and the kernel lets
// only the owner of a directory move it to another parent, so the move
// runs in the user namespace (the "snapshot" stage, FreezeMain). Its
// format is the store's own: overlayfs wrote whiteouts as 0:0 character
// devices and opaque directories with user.overlay.opaque, as an unpacked
// layer has them.

// Freeze operations.
const (
	// FreezeOp moves containers/<box>/upper to layers/<layer> and gives
	// the box an empty upper; done again once the layer exists, it only
	// makes sure the upper is there (a completed move is not repeated).
	FreezeOp = "freeze"
	// ResetOp discards containers/<box>/upper (a rollback): it is moved
	// into tmp/ and removed there, and the box gets an empty one.
	ResetOp = "reset"
)

// FreezeRequest is what the snapshot stage reads on stdin.
type FreezeRequest struct {
	Root  string `json:"root"`
	Op    string `json:"op"`
	Box   string `json:"box"`             // the box directory's name in containers/
	Layer string `json:"layer,omitempty"` // FreezeOp: the new layer (64 hex digits)
}

// FreezeResult is what the snapshot stage answers on fd 3.
type FreezeResult struct {
	Files int    `json:"files"` // entries of the frozen layer
	Bytes int64  `json:"bytes"` // the size of its files' contents
	Error string `json:"error,omitempty"`
}

// Freezer runs a FreezeRequest in the user namespace (cmd/factory).
type Freezer func(req FreezeRequest) (FreezeResult, error)

// NewSnapshotLayer returns a fresh layer name for a frozen writable layer:
// 64 random hex digits, a name no image's chain ID will take.
func NewSnapshotLayer() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// FreezeMain is the body of the "snapshot" stage.
func FreezeMain(result *os.File) int {
	var req FreezeRequest
	var res FreezeResult
	defer func() { _ = json.NewEncoder(result).Encode(res) }()
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		res.Error = "reading the snapshot request: " + err.Error()
		return 125
	}
	s := &Store{Root: req.Root}
	var err error
	res, err = s.freeze(req)
	if err != nil {
		res.Error = err.Error()
		return 1
	}
	return 0
}

// freeze does req relative to the store root opened once, following no
// symbolic link: the box directory and layers/ are opened beneath the
// root, and the moves are renames between those descriptors.
func (s *Store) freeze(req FreezeRequest) (FreezeResult, error) {
	var res FreezeResult
	if l := len(req.Box); l < 12 || l > 64 || !isLowerHexString(req.Box) {
		return res, fmt.Errorf("%q is not a box id", req.Box)
	}
	r, err := openRoot(s.Root)
	if err != nil {
		return res, err
	}
	defer r.close()
	box, err := r.openDir(filepath.Join("containers", req.Box))
	if err != nil {
		return res, fmt.Errorf("opening the box directory: %w", err)
	}
	defer unix.Close(box)
	var st unix.Stat_t
	upperIsDir := false
	switch err := unix.Fstatat(box, "upper", &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		upperIsDir = true
	case err == nil:
		// A link or a file in its place is never moved or followed.
		return res, errors.New("the box's upper is not a directory (a symbolic link?)")
	case !errors.Is(err, unix.ENOENT):
		return res, err
	}
	switch req.Op {
	case FreezeOp:
		if !isHex64(req.Layer) {
			return res, fmt.Errorf("%q is not a layer name", req.Layer)
		}
		if err := os.MkdirAll(s.LayersDir(), 0o700); err != nil {
			return res, err
		}
		layers, err := r.openDir("layers")
		if err != nil {
			return res, fmt.Errorf("opening layers/: %w", err)
		}
		defer unix.Close(layers)
		if unix.Fstatat(layers, req.Layer, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			if !upperIsDir {
				// Nothing was written yet: the frozen layer is empty.
				if err := unix.Mkdirat(layers, req.Layer, 0o755); err != nil {
					return res, fmt.Errorf("creating the snapshot layer: %w", err)
				}
			} else if err := unix.Renameat(box, "upper", layers, req.Layer); err != nil {
				return res, fmt.Errorf("moving the writable layer into the store: %w", err)
			}
		}
		res.Files, res.Bytes = countTree(layers, req.Layer, 0)
	case ResetOp:
		if upperIsDir {
			if err := os.MkdirAll(s.TmpDir(), 0o700); err != nil {
				return res, err
			}
			tmp, err := r.openDir("tmp")
			if err != nil {
				return res, fmt.Errorf("opening tmp/: %w", err)
			}
			defer unix.Close(tmp)
			name := "reset-" + req.Box + "-" + NewSnapshotLayer()[:12]
			if err := unix.Renameat(box, "upper", tmp, name); err != nil {
				return res, fmt.Errorf("moving the writable layer away: %w", err)
			}
			if err := removeAt(tmp, name); err != nil {
				return res, fmt.Errorf("removing the discarded writable layer: %w", err)
			}
		}
	default:
		return res, fmt.Errorf("unknown snapshot operation %q", req.Op)
	}
	// A fresh upper, as the box init makes it (0755, the box's root), and
	// a work directory that holds nothing of the old one.
	if err := unix.Mkdirat(box, "upper", 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return res, fmt.Errorf("creating the new writable layer: %w", err)
	}
	if err := removeAt(box, "work"); err != nil {
		return res, fmt.Errorf("clearing the work directory: %w", err)
	}
	return res, nil
}

// countTree counts the entries below name in dirfd (not name itself) and
// the size of their regular files, following no symbolic link.
func countTree(dirfd int, name string, depth int) (files int, bytes int64) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil || depth > 512 {
		if err == nil {
			unix.Close(fd)
		}
		return 0, 0
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	for {
		batch, err := f.Readdirnames(1024)
		for _, c := range batch {
			var st unix.Stat_t
			if unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue
			}
			files++
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
				bytes += st.Size
			case unix.S_IFDIR:
				n, b := countTree(fd, c, depth+1)
				files, bytes = files+n, bytes+b
			}
		}
		if err != nil || len(batch) == 0 {
			return files, bytes
		}
	}
}

func isLowerHexString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// WriteSnapshotMarker records layer as box id's frozen writable layer
// (layerinfo/<layer>, with Box set and no DiffID): devbox verify and df
// know it by this, and GC sizes it.
func (s *Store) WriteSnapshotMarker(layer, box string, files int, bytes int64) error {
	if !isHex64(layer) {
		return fmt.Errorf("%q is not a layer name", layer)
	}
	return s.writeMarker(LayerMarker{Chain: layer, Box: box, Files: files, Bytes: bytes})
}

// SnapshotLayer reports whether layer is a snapshot layer (its marker
// names a box).
func (s *Store) SnapshotLayer(layer string) bool {
	if !isHex64(layer) {
		return false
	}
	r, err := openRoot(s.Root)
	if err != nil {
		return false
	}
	defer r.close()
	mk, err := s.readMarker(r, layer)
	return err == nil && mk.Box != ""
}
