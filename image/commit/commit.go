package commit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox-dev/devbox/hostexec"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/stagecall"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// Level is the gzip level of committed layers: klauspost's fastest level
// that still compresses text well (layers are compressed once, on commit).
const Level = gzip.BestSpeed

// Options describe one commit.
type Options struct {
	Ref     string  // full reference to tag
	BaseID  v1.Hash // the box's image: digest of its stored manifest
	Read    ReadRequest
	Mapping rootless.Mapping
	Unpack  image.Unpacker // unpacks the new layer into the store
	Limits  limits.Limits  // the unpack's bounds (zero fields: the defaults)
	// Remove removes layer trees when a failed commit takes back what it
	// created (store.Abandon); nil: they stay for the next GC.
	Remove  store.Remover
	Author  string
	Message string
	// CreatedBy is the history entry's created_by.
	CreatedBy string
	// History, when set, replaces the one entry made of CreatedBy, Author
	// and Message: the steps that made the layer, in order, exactly one
	// of them without EmptyLayer (the layer's own). Their Created is set.
	History []v1.History
	// Edit changes the new image's config (environment, labels, command,
	// …) before it is written; nil keeps the base's.
	Edit func(*v1.Config) error
	// Now is the image's creation time (zero: the current time).
	Now time.Time
}

// Result describes a committed image.
type Result struct {
	Ref    string
	ID     v1.Hash // digest of the stored manifest
	DiffID v1.Hash // of the new layer
	Blob   v1.Hash
	Size   int64 // compressed size of the new layer
	Bytes  int64 // uncompressed size
}

// Commit reads the box's layer (the commit-read stage), stores it as a
// gzip-compressed blob and an unpacked layer, writes the config and
// manifest on top of the box's image and tags ref.
func Commit(ctx context.Context, st *store.Store, opts Options) (*Result, error) {
	tracked, created := st.Tracked()
	res, err := commit(ctx, tracked, created, opts)
	if err != nil {
		_, _ = st.Abandon(created, opts.Remove)
		return nil, err
	}
	return res, nil
}

func commit(ctx context.Context, st *store.Store, created *store.Created, opts Options) (*Result, error) {
	if err := checkHistory(opts.History); err != nil {
		return nil, err
	}
	unlockGC, err := st.GCLock(false)
	if err != nil {
		return nil, err
	}
	defer unlockGC()
	m, err := st.Manifest(opts.BaseID)
	if err != nil {
		return nil, fmt.Errorf("reading the box's image: %w (hint: pull its image again with devbox pull)", err)
	}
	cfg, err := st.ConfigFile(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading the box's image config: %w (hint: pull its image again with devbox pull)", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("the box's image lists %d layers in its config and %d in its manifest", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	// The box stands on its image's layers, and maybe on layers of its own
	// (snapshots) above them: those go into the new layer with the upper.
	chains := store.ChainIDs(cfg.RootFS.DiffIDs)
	own := len(opts.Read.Lowers) - len(chains)
	if own < 0 {
		return nil, errors.New("the box's layers do not end with its image's: its record is damaged (hint: devbox verify)")
	}
	for i, l := range opts.Read.Lowers[own:] {
		if filepath.Base(l) != chains[len(chains)-1-i].Hex {
			return nil, errors.New("the box's layers do not end with its image's: its record is damaged (hint: devbox verify)")
		}
	}
	opts.Read.Frozen = append(opts.Read.Frozen, opts.Read.Lowers[:own]...)
	opts.Read.Lowers = opts.Read.Lowers[own:]
	for _, l := range m.Layers {
		if !st.HasBlob(l.Digest, l.Size) {
			return nil, fmt.Errorf("the box's image lacks its layer %s in the store (hint: pull the image again with devbox pull)", l.Digest)
		}
	}

	res := &Result{Ref: opts.Ref}
	tmp, err := os.CreateTemp(st.TmpDir(), "commit-")
	if err != nil {
		return nil, fmt.Errorf("committing: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	compressed := sha256.New()
	cw := &counter{w: io.MultiWriter(tmp, compressed)}
	zw, err := gzip.NewWriterLevel(cw, Level)
	if err != nil {
		return nil, err
	}
	// Compression runs next to the hashing of the tar (a core each).
	pr, pw := io.Pipe()
	zdone := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(zw, pr, make([]byte, 1<<20))
		if err == nil {
			err = zw.Close()
		}
		pr.CloseWithError(err)
		zdone <- err
	}()
	uncompressed := sha256.New()
	uw := &counter{w: io.MultiWriter(pw, uncompressed)}
	err = readLayer(ctx, opts.Mapping, opts.Read, uw)
	pw.CloseWithError(err)
	if zerr := <-zdone; err == nil && zerr != nil {
		err = fmt.Errorf("compressing the layer: %w", zerr)
	}
	if err != nil {
		return nil, err
	}
	res.DiffID, res.Blob = sum(uncompressed), sum(compressed)
	res.Size, res.Bytes = cw.n, uw.n
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := st.WriteBlob(res.Blob, res.Size, tmp); err != nil {
		return nil, fmt.Errorf("storing the layer: %w", err)
	}

	diffIDs := append(append([]v1.Hash{}, cfg.RootFS.DiffIDs...), res.DiffID)
	chains = store.ChainIDs(diffIDs)
	if top := chains[len(chains)-1]; !st.HasLayer(top) && opts.Unpack != nil {
		job := store.UnpackJob{Chain: top, DiffID: res.DiffID, Blob: res.Blob, MediaType: string(types.OCILayer)}
		for k := len(chains) - 2; k >= 0; k-- {
			job.Lowers = append(job.Lowers, chains[k].Hex)
		}
		created.ExpectLayers([]v1.Hash{top})
		if err := unpackStored(ctx, st, opts.Unpack, job, res.Size, opts.Limits.Resolve()); err != nil {
			return nil, err
		}
	}

	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	nc := cfg.DeepCopy()
	nc.Created = v1.Time{Time: now.UTC().Truncate(time.Second)}
	if opts.Author != "" {
		nc.Author = opts.Author
	}
	nc.RootFS.Type = "layers"
	nc.RootFS.DiffIDs = diffIDs
	steps := opts.History
	if len(steps) == 0 {
		steps = []v1.History{{CreatedBy: opts.CreatedBy, Author: opts.Author, Comment: opts.Message}}
	}
	for _, h := range steps {
		h.Created = nc.Created
		nc.History = append(nc.History, h)
	}
	if opts.Edit != nil {
		if err := opts.Edit(&nc.Config); err != nil {
			return nil, err
		}
	}
	cfgBytes, err := json.Marshal(nc)
	if err != nil {
		return nil, err
	}
	cfgDigest, err := st.WriteBlobBytes(cfgBytes)
	if err != nil {
		return nil, err
	}
	nm := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfgBytes)), Digest: cfgDigest},
		Layers:        append(append([]v1.Descriptor{}, m.Layers...), v1.Descriptor{MediaType: types.OCILayer, Size: res.Size, Digest: res.Blob}),
	}
	mBytes, err := json.Marshal(&nm)
	if err != nil {
		return nil, err
	}
	if res.ID, err = st.WriteBlobBytes(mBytes); err != nil {
		return nil, err
	}
	d := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(mBytes)), Digest: res.ID,
		Platform: &v1.Platform{OS: nc.OS, Architecture: nc.Architecture, Variant: nc.Variant}}
	if err := st.Tag(opts.Ref, d, store.Origin{ManifestDigest: res.ID.String()}); err != nil {
		return nil, err
	}
	return res, nil
}

// checkHistory refuses history steps that would not describe one layer:
// an image's history has one entry without empty_layer per layer.
func checkHistory(h []v1.History) error {
	if len(h) == 0 {
		return nil
	}
	n := 0
	for _, e := range h {
		if !e.EmptyLayer {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("a commit's history steps must have exactly one entry for its layer, not %d", n)
	}
	return nil
}

// unpackStored unpacks job from its stored blob through the unpack stage.
func unpackStored(ctx context.Context, st *store.Store, unpack image.Unpacker, job store.UnpackJob, size int64, lim limits.Limits) error {
	feed := store.NewBlobFeed()
	defer feed.Close()
	if err := st.FeedStored(feed, job.Blob, size); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		sw := &store.StreamWriter{W: pw}
		_, err := io.Copy(sw, feed.Reader())
		if err == nil {
			err = sw.EndJob()
		}
		pw.CloseWithError(err)
	}()
	err := unpack(ctx, []store.UnpackJob{job}, pr, lim)
	pr.CloseWithError(errors.New("the unpacker has stopped"))
	if err != nil {
		return fmt.Errorf("unpacking the committed layer: %w", err)
	}
	return nil
}

// readLayer runs the commit-read stage and copies its tar to w.
func readLayer(ctx context.Context, m rootless.Mapping, req ReadRequest, w io.Writer) error {
	if err := stagecall.Run(ctx, stagecall.Call{Stage: StageRead, Mapping: m, Request: req}, w); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("reading the box's layer: %w", err)
	}
	return nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// BoxRequest is the ReadRequest for the box in boxDir (its upper
// directory, spec.json of its last start) on the layers lowers (absolute
// directories, top-most first).
func BoxRequest(boxDir string, lowers []string) (ReadRequest, error) {
	req := ReadRequest{Upper: filepath.Join(boxDir, "upper"), Lowers: lowers,
		MountPoints: []string{hostexec.ClientPath, hostexec.XdgOpenPath}}
	if _, err := os.Lstat(filepath.Join(boxDir, "rootfs-copy")); err == nil {
		return req, errors.New("the box runs on a copy of its image (no overlay here), which devbox commit cannot tell apart from its changes")
	}
	b, err := os.ReadFile(filepath.Join(boxDir, "spec.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return req, nil // never started: nothing of devbox's in the layer
	}
	if err != nil {
		return req, fmt.Errorf("reading the box's spec: %w", err)
	}
	var s runtime.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return req, fmt.Errorf("reading the box's spec: %w", err)
	}
	if a := s.Account; a != nil && a.Name != "" && !strings.ContainsAny(a.Name, "/:\n") {
		req.Account = &Account{Name: a.Name, UID: a.UID, GID: a.GID}
	}
	for _, m := range s.Mounts {
		req.MountPoints = append(req.MountPoints, m.Target)
	}
	return req, nil
}
