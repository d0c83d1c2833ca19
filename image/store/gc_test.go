package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestCheckRemovable(t *testing.T) {
	root := t.TempDir()
	s := &Store{Root: root}
	os.MkdirAll(s.LayersDir(), 0o700)
	os.MkdirAll(s.TmpDir(), 0o700)
	outside := t.TempDir()
	// containers/ is a symlink to a directory outside the store.
	os.Symlink(outside, s.ContainersDir())
	for _, c := range []struct {
		path, want string
	}{
		{filepath.Join(s.LayersDir(), "abc"), ""},
		{filepath.Join(s.TmpDir(), "blob-x-1"), ""},
		{filepath.Join(s.ContainersDir(), "0123456789ab"), "not a directory of the store"},
		{filepath.Join(s.LayersDir(), ".."), "not a store layer"},
		{s.LayersDir() + "/x/../y", "not a store layer"},
		{filepath.Join(root, "oci"), "not a store layer"},
		{"/home/u", "not a store layer"},
	} {
		err := s.CheckRemovable(c.path)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckRemovable(%q) = %v, want %q", c.path, err, c.want)
		}
	}
}

// TestRemoveTreesNoFollow: links planted in the store are removed as
// links; a symlinked containers/ is refused; the canary outside stays.
func TestRemoveTreesNoFollow(t *testing.T) {
	root := t.TempDir()
	s := &Store{Root: root}
	canary := t.TempDir()
	if err := os.WriteFile(filepath.Join(canary, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{s.LayersDir(), s.TmpDir(), filepath.Join(s.LayersDir(), "a", "deep", "er")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(canary, filepath.Join(s.LayersDir(), "a", "deep", "link"))
	os.Symlink(filepath.Join(canary, "keep"), filepath.Join(s.LayersDir(), "a", "file-link"))
	os.WriteFile(filepath.Join(s.LayersDir(), "a", "deep", "er", "f"), nil, 0o600)
	os.Symlink(canary, filepath.Join(s.TmpDir(), "blob-x-1"))
	os.Symlink(canary, s.ContainersDir())
	for _, c := range []struct {
		path    string
		wantErr bool
	}{
		{filepath.Join(s.LayersDir(), "a"), false},
		{filepath.Join(s.TmpDir(), "blob-x-1"), false},
		{filepath.Join(s.ContainersDir(), "keep"), true},
		{filepath.Join(s.LayersDir(), "missing"), false},
	} {
		err := s.RemoveTrees([]string{c.path})
		if (err != nil) != c.wantErr {
			t.Errorf("RemoveTrees(%s) = %v, want error %v", c.path, err, c.wantErr)
		}
		if _, err := os.Lstat(c.path); !c.wantErr && err == nil {
			t.Errorf("%s still there", c.path)
		}
	}
	if b, err := os.ReadFile(filepath.Join(canary, "keep")); err != nil || string(b) != "x" {
		t.Fatalf("canary: %q, %v", b, err)
	}
	if _, err := os.Lstat(s.ContainersDir()); err != nil {
		t.Fatalf("the containers/ link itself: %v", err)
	}
}

// gcFixture is a store with one tagged image (config, manifest, two layer
// blobs, two unpacked layers with markers) and garbage of every kind.
type gcFixture struct {
	s                 *Store
	cfg, man          v1.Hash
	layerBlobs        []v1.Hash
	chains            []v1.Hash
	orphanBlob        v1.Hash
	orphanChain       string
	boxChain, runSpec string // layers only a box record / a run spec stack
}

func newGCFixture(t *testing.T) *gcFixture {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := &gcFixture{s: s}
	if unlock, err := s.GCLock(false); err == nil { // gc.lock, as after any pull
		unlock()
	}
	var diffIDs []v1.Hash
	var layers []v1.Descriptor
	for i := 0; i < 2; i++ {
		b := []byte(fmt.Sprintf("layer %d", i))
		h, err := s.WriteBlobBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		fx.layerBlobs = append(fx.layerBlobs, h)
		layers = append(layers, v1.Descriptor{MediaType: types.OCILayer, Size: int64(len(b)), Digest: h})
		diffIDs = append(diffIDs, h)
	}
	cfgBytes, _ := json.Marshal(v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: diffIDs}})
	fx.cfg, _ = s.WriteBlobBytes(cfgBytes)
	manBytes, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfgBytes)), Digest: fx.cfg}, Layers: layers})
	fx.man, _ = s.WriteBlobBytes(manBytes)
	if err := s.Tag("example.com/x:1", v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(manBytes)), Digest: fx.man}, Origin{}); err != nil {
		t.Fatal(err)
	}
	fx.chains = ChainIDs(diffIDs)
	fx.orphanBlob, _ = s.WriteBlobBytes([]byte("nobody's"))
	fx.orphanChain = strings.Repeat("a", 64)
	fx.boxChain = strings.Repeat("b", 64)
	fx.runSpec = strings.Repeat("c", 64)
	for _, c := range []string{fx.chains[0].Hex, fx.chains[1].Hex, fx.orphanChain, fx.boxChain, fx.runSpec} {
		mkdir(t, filepath.Join(s.LayersDir(), c, "usr"))
		if err := s.writeMarker(LayerMarker{Chain: c, DiffID: "sha256:" + c, Bytes: 4096}); err != nil {
			t.Fatal(err)
		}
	}
	// A marker whose layer is gone, a killed unpack, a killed download.
	writeFile(t, filepath.Join(s.layerInfoDir(), strings.Repeat("d", 64)), `{}`)
	mkdir(t, filepath.Join(s.TmpDir(), "layer-"+strings.Repeat("e", 64)+"-123", "etc"))
	writeFile(t, filepath.Join(s.TmpDir(), "blob-"+strings.Repeat("f", 64)+"-456"), "partial")
	writeFile(t, filepath.Join(s.ociDir(), ".index.json-789"), "{")
	// A box created but never started (box.json only: the old bug), and a
	// run with only its spec (paths of layer directories).
	box := filepath.Join(s.ContainersDir(), strings.Repeat("1", 32))
	mkdir(t, box)
	writeFile(t, filepath.Join(box, "box.json"), `{"version":1,"lowers":["`+fx.boxChain+`"]}`)
	run := filepath.Join(s.ContainersDir(), strings.Repeat("2", 32))
	mkdir(t, run)
	writeFile(t, filepath.Join(run, "spec.json"), `{"lowers":["`+filepath.Join(s.LayersDir(), fx.runSpec)+`","../../etc"]}`)
	// Locks: of the box (kept), of a removed box and of a blob (removed).
	for _, l := range []string{"box-" + strings.Repeat("1", 32), "box-" + strings.Repeat("9", 32), "blob-" + fx.orphanBlob.Hex} {
		writeFile(t, filepath.Join(s.locksDir(), l+".lock"), "")
	}
	return fx
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// listStore returns every path below the store root, relative.
func listStore(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != root {
			rel, _ := filepath.Rel(root, p)
			out[rel] = true
		}
		return nil
	})
	return out
}

func TestGC(t *testing.T) {
	for _, c := range []struct {
		name    string
		dryRun  bool
		ignore  bool // the never-started box's record does not count
		gone    []string
		kept    []string
		kinds   map[string]int
		noMoves bool
	}{
		{
			name: "sweep",
			gone: []string{"oci/blobs/sha256/<orphanBlob>", "layers/<orphanChain>", "layerinfo/<orphanChain>",
				"layerinfo/" + strings.Repeat("d", 64), "tmp/layer-" + strings.Repeat("e", 64) + "-123",
				"tmp/blob-" + strings.Repeat("f", 64) + "-456", "oci/.index.json-789",
				"locks/box-" + strings.Repeat("9", 32) + ".lock", "locks/blob-<orphanBlob>.lock"},
			kept: []string{"oci/blobs/sha256/<man>", "oci/blobs/sha256/<cfg>", "oci/blobs/sha256/<layer0>",
				"layers/<chain0>", "layers/<chain1>", "layerinfo/<chain1>", "layers/<boxChain>", "layers/<runSpec>",
				"layerinfo/<boxChain>", "locks/box-" + strings.Repeat("1", 32) + ".lock"},
			kinds: map[string]int{KindBlob: 1, KindLayer: 1, KindMarker: 2, KindTmp: 3},
		},
		{
			name: "dry run", dryRun: true, noMoves: true,
			kinds: map[string]int{KindBlob: 1, KindLayer: 1, KindMarker: 2, KindTmp: 3},
		},
		{
			name: "ignored box", ignore: true,
			gone:  []string{"layers/<boxChain>", "layerinfo/<boxChain>"},
			kept:  []string{"layers/<runSpec>"},
			kinds: map[string]int{KindBlob: 1, KindLayer: 2, KindMarker: 3, KindTmp: 3},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newGCFixture(t)
			s := fx.s
			subst := strings.NewReplacer("<orphanBlob>", fx.orphanBlob.Hex, "<orphanChain>", fx.orphanChain,
				"<man>", fx.man.Hex, "<cfg>", fx.cfg.Hex, "<layer0>", fx.layerBlobs[0].Hex,
				"<chain0>", fx.chains[0].Hex, "<chain1>", fx.chains[1].Hex, "<boxChain>", fx.boxChain, "<runSpec>", fx.runSpec)
			before := listStore(t, s.Root)
			opts := GCOptions{DryRun: c.dryRun, Remove: s.RemoveTrees}
			if c.ignore {
				opts.IgnoreBoxes = map[string]bool{strings.Repeat("1", 32): true}
			}
			rep, err := s.GC(opts)
			if err != nil {
				t.Fatal(err)
			}
			for k, n := range c.kinds {
				if got := rep.Count(k); got != n {
					t.Errorf("%d %s item(s), want %d: %+v", got, k, n, rep.Items)
				}
			}
			if rep.Bytes <= 0 {
				t.Errorf("report without sizes: %+v", rep)
			}
			after := listStore(t, s.Root)
			for _, p := range c.gone {
				if after[subst.Replace(p)] {
					t.Errorf("%s survived", subst.Replace(p))
				}
			}
			for _, p := range c.kept {
				if !after[subst.Replace(p)] {
					t.Errorf("%s was removed", subst.Replace(p))
				}
			}
			if c.noMoves && len(after) != len(before) {
				t.Errorf("a dry run changed the store: %d entries, %d before", len(after), len(before))
			}
			if !c.dryRun {
				again, err := s.GC(GCOptions{DryRun: true})
				if err != nil || len(again.Items) != 0 {
					t.Errorf("a second collection would remove %+v (%v)", again.Items, err)
				}
			}
		})
	}
}

// TestGCKeepsHeldTmp: a temporary entry whose writer holds its lock stays.
func TestGCKeepsHeldTmp(t *testing.T) {
	fx := newGCFixture(t)
	key := "blob-" + strings.Repeat("f", 64)
	unlock, err := fx.s.LockKey(key)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := fx.s.GC(GCOptions{Remove: fx.s.RemoveTrees}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(fx.s.TmpDir(), key+"-456")); err != nil {
		t.Errorf("a download in progress was removed: %v", err)
	}
}

// TestAbandon: a failed pull removes the blobs and layers it created,
// nothing that an image references, and no other garbage.
func TestAbandon(t *testing.T) {
	fx := newGCFixture(t)
	tracked, created := fx.s.Tracked()
	mine, err := tracked.WriteBlobBytes([]byte("written by the failed pull"))
	if err != nil {
		t.Fatal(err)
	}
	// The pull found the image's layer 0 blob present: not its own.
	if _, err := tracked.WriteBlobBytes([]byte("layer 0")); err != nil {
		t.Fatal(err)
	}
	newChain := strings.Repeat("7", 64)
	mkdir(t, filepath.Join(fx.s.LayersDir(), newChain))
	created.ExpectLayers([]v1.Hash{{Algorithm: "sha256", Hex: newChain}, fx.chains[0]})
	rep, err := fx.s.Abandon(created, fx.s.RemoveTrees)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(KindBlob) != 1 || rep.Count(KindLayer) != 1 {
		t.Errorf("abandoned %+v, want the pull's one blob and one layer", rep.Items)
	}
	for _, p := range []string{fx.s.BlobPath(mine), filepath.Join(fx.s.LayersDir(), newChain)} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s survived", p)
		}
	}
	for _, p := range []string{fx.s.BlobPath(fx.layerBlobs[0]), fx.s.BlobPath(fx.orphanBlob), fx.s.LayerDir(fx.chains[0])} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	// While another pull holds gc.lock shared, nothing is removed.
	tracked2, created2 := fx.s.Tracked()
	other, _ := tracked2.WriteBlobBytes([]byte("another"))
	unlock, err := fx.s.GCLock(false)
	if err != nil {
		t.Fatal(err)
	}
	fx.s.Abandon(created2, fx.s.RemoveTrees)
	unlock()
	if _, err := os.Lstat(fx.s.BlobPath(other)); err != nil {
		t.Errorf("removed while another pull ran: %v", err)
	}
}
