package store

import (
	"path/filepath"
)

// Usage is what the store holds (devbox df).
type Usage struct {
	Images       int   `json:"images"`
	ActiveImages int   `json:"activeImages"` // images a box stacks
	ImageBytes   int64 `json:"imageBytes"`   // blobs the images reference
	Layers       int   `json:"layers"`
	LayerBytes   int64 `json:"layerBytes"`
	BoxDirs      []BoxUsage
	Reclaimable  int64 `json:"reclaimable"` // what GC would remove
	Garbage      int   `json:"garbage"`
	// ActiveLayers are the chain IDs boxes stack.
	ActiveLayers map[string]bool `json:"-"`
}

// BoxUsage is the disk usage of one entry of containers/ (a box or a
// run).
type BoxUsage struct {
	ID    string
	Bytes int64
}

// Usage returns what the store holds and what a collection would
// free. Sizes are disk usage; a layer's is recorded in its marker, a
// box's is what the user can read of it.
func (s *Store) Usage() (*Usage, error) {
	unlockGC, err := s.GCLock(false)
	if err != nil {
		return nil, err
	}
	defer unlockGC()
	r, err := openRoot(s.Root)
	if err != nil {
		return nil, err
	}
	defer r.close()
	g, err := s.collect(GCOptions{DryRun: true})
	if err != nil {
		return nil, err
	}
	garbage := map[string]bool{}
	for _, it := range g.Items {
		garbage[it.Kind+"/"+it.Name] = true
	}
	u := &Usage{Reclaimable: g.Bytes, Garbage: len(g.Items), ActiveLayers: map[string]bool{}}
	boxes, _ := r.names("containers")
	for _, id := range boxes {
		for _, c := range r.boxLowers(id) {
			u.ActiveLayers[c] = true
		}
		u.BoxDirs = append(u.BoxDirs, BoxUsage{ID: id, Bytes: DiskUsage(filepath.Join(s.ContainersDir(), id))})
	}
	if im, err := s.Index(); err == nil {
		u.Images = len(im.Manifests)
		for _, d := range im.Manifests {
			if m, err := s.Manifest(d.Digest); err == nil {
				if cf, err := s.ConfigFile(m.Config.Digest); err == nil && len(cf.RootFS.DiffIDs) > 0 {
					if ch := ChainIDs(cf.RootFS.DiffIDs); u.ActiveLayers[ch[len(ch)-1].Hex] {
						u.ActiveImages++
					}
				}
			}
		}
	}
	blobs, _ := r.names(kindDirs[KindBlob])
	for _, b := range blobs {
		if !garbage[KindBlob+"/"+b] {
			u.ImageBytes += r.usage(kindDirs[KindBlob], b)
		}
	}
	layers, _ := r.names(kindDirs[KindLayer])
	u.Layers = len(layers)
	for _, l := range layers {
		if mk, err := s.readMarker(r, l); err == nil {
			u.LayerBytes += mk.Bytes
		} else {
			u.LayerBytes += r.usage(kindDirs[KindLayer], l)
		}
	}
	return u, nil
}
