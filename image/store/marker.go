package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayerMarker is a layer's completion record, layerinfo/<chain>: written
// by the unpack stage once the layer's uncompressed digest matched its
// diff_id, before the layer is renamed into layers/. A layer without one
// was not finished by devbox (or by an older devbox); a marker without its
// layer is garbage.
type LayerMarker struct {
	Chain  string `json:"chain"`
	DiffID string `json:"diffID"`
	Blob   string `json:"blob"`
	Files  int    `json:"files"` // entries created: files, dirs, links
	Bytes  int64  `json:"bytes"` // the size of its files' contents
	// Box is set, and DiffID and Blob are not, on a snapshot layer: the
	// frozen writable layer of that box (snapshot.go).
	Box string `json:"box,omitempty"`
}

// maxMarker bounds what is read of a marker.
const maxMarker = 64 << 10

// layerInfoDir holds the layers' markers.
func (s *Store) layerInfoDir() string { return filepath.Join(s.Root, "layerinfo") }

// writeMarker records that layer chain is complete (atomically, before the
// layer itself is renamed into place).
func (s *Store) writeMarker(mk LayerMarker) error {
	b, err := json.Marshal(mk)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.layerInfoDir(), 0o700); err != nil {
		return storeErr("writing layer marker", err, s.Root)
	}
	// Not fsynced: the layer's own files are not either; after a power
	// loss, a layer that lost its marker is reported by devbox verify.
	f, err := os.CreateTemp(s.layerInfoDir(), "."+mk.Chain+"-")
	if err != nil {
		return storeErr("writing layer marker", err, s.Root)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(s.layerInfoDir(), mk.Chain))
	}
	if err != nil {
		os.Remove(f.Name())
		return storeErr("writing layer marker", err, s.Root)
	}
	return nil
}

// readMarker reads and checks layer chain's marker.
func (s *Store) readMarker(r *rootDir, chain string) (*LayerMarker, error) {
	b, err := r.readFile(filepath.Join("layerinfo", chain), maxMarker)
	if err != nil {
		return nil, err
	}
	var mk LayerMarker
	if err := json.Unmarshal(b, &mk); err != nil {
		return nil, fmt.Errorf("marker of layer %s: %w", chain, err)
	}
	if mk.Chain != chain {
		return nil, fmt.Errorf("marker of layer %s names layer %q", chain, mk.Chain)
	}
	if mk.Box != "" {
		if l := len(mk.Box); l < 12 || l > 64 || !isLowerHexString(mk.Box) || mk.DiffID != "" || mk.Blob != "" {
			return nil, fmt.Errorf("marker of snapshot layer %s is not one devbox wrote", chain)
		}
		return &mk, nil
	}
	if _, err := v1.NewHash(mk.DiffID); err != nil {
		return nil, fmt.Errorf("marker of layer %s: diffID: %w", chain, err)
	}
	return &mk, nil
}
