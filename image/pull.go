package image

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Event reports pull progress to the caller's callback.
type Event struct {
	ID    string // short digest of the blob
	Kind  string // "layer" or "config"
	State string // "waiting", "exists", "downloading", "done", "unpacking", "unpacked", "resolved"
	Total int64
	Done  int64
	Info  string // for "resolved": the reference actually used (mirror or origin)
}

// Unpacker unpacks layers where file ownership works (inside the keep-id
// user namespace), while they download: the compressed data of the jobs'
// blobs comes from data, in the format that store.StreamWriter writes and
// store.UnpackStream reads. Reads from data fail once the Unpacker has
// returned. lim bounds the layers' uncompressed sizes.
type Unpacker func(ctx context.Context, jobs []store.UnpackJob, data io.Reader, lim limits.Limits) error

// Options configure Pull. All fields are optional.
type Options struct {
	Platform   *v1.Platform   // default: HostPlatform()
	Keychain   authn.Keychain // default: authn.DefaultKeychain
	Registries Registries
	Jobs       int         // parallel downloads, default 4
	Progress   func(Event) // called from several goroutines
	Unpack     Unpacker    // nil: blobs only
	Transport  http.RoundTripper
	// Remove removes layer trees (in the user namespace) when a failed
	// pull takes back what it created (store.Abandon); nil: they stay for
	// the next GC.
	Remove store.Remover
	Limits limits.Limits // zero fields: the defaults
}

// Result describes a finished pull.
type Result struct {
	Ref          string
	From         string // the reference the content came from (a mirror or the origin)
	Digest       v1.Hash
	SourceDigest v1.Hash // what the reference resolved to (an index digest for multi-arch images)
	Config       *v1.ConfigFile
	Chains       []v1.Hash
	Downloaded   int
	Bytes        int64
	Unpacked     int
}

// Pull fetches ref into st and, when opts.Unpack is set, unpacks its layers.
// A pull that fails removes again the blobs and layers it created that
// nothing else references (store.Abandon).
func Pull(ctx context.Context, st *store.Store, ref name.Reference, opts Options) (*Result, error) {
	tracked, created := st.Tracked()
	if unpackFn := opts.Unpack; unpackFn != nil {
		opts.Unpack = func(ctx context.Context, jobs []store.UnpackJob, data io.Reader, lim limits.Limits) error {
			chains := make([]v1.Hash, len(jobs))
			for i, j := range jobs {
				chains[i] = j.Chain
			}
			created.ExpectLayers(chains)
			return unpackFn(ctx, jobs, data, lim)
		}
	}
	res, err := pull(ctx, tracked, ref, opts)
	if err != nil {
		// pull has let its shared gc.lock go.
		_, _ = st.Abandon(created, opts.Remove)
		return nil, err
	}
	return res, nil
}

func pull(ctx context.Context, st *store.Store, ref name.Reference, opts Options) (*Result, error) {
	if opts.Platform == nil {
		p := HostPlatform()
		opts.Platform = &p
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	opts.Limits = opts.Limits.Resolve()
	progress := opts.Progress
	if progress == nil {
		progress = func(Event) {}
	}
	unlockGC, err := st.GCLock(false)
	if err != nil {
		return nil, err
	}
	defer unlockGC()

	cands, err := opts.Registries.Candidates(ref)
	if err != nil {
		return nil, err
	}
	var (
		desc    *remote.Descriptor
		from    name.Reference
		errs    []string
		lastErr error
	)
	for _, c := range cands {
		d, err := remote.Get(c, opts.remote(ctx, c.Context())...)
		if err == nil {
			desc, from = d, c
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var le *limits.Error
		if errors.As(err, &le) {
			return nil, fmt.Errorf("pulling %s: %w", FullName(ref), le)
		}
		lastErr = err
		errs = append(errs, FullName(c)+": "+shortErr(err))
	}
	if desc == nil {
		return nil, fetchErr(ref, lastErr, errs)
	}
	progress(Event{State: "resolved", Info: FullName(from)})
	res := &Result{Ref: FullName(ref), From: FullName(from), SourceDigest: desc.Digest}
	lim := opts.Limits

	doc, err := decodeDocument(string(desc.MediaType), desc.Manifest, lim, "the manifest of "+res.Ref)
	if err != nil {
		return nil, err
	}
	manifestBytes, manifestDesc := desc.Manifest, desc.Descriptor
	manifestDesc.MediaType = doc.mt
	for depth := 1; doc.index != nil; depth++ {
		if depth > lim.IndexDepth {
			return nil, lim.Over("the index of "+res.Ref, "nests deeper than", limits.KeyIndexDepth)
		}
		child, err := pickChild(doc.index, *opts.Platform, res.Ref)
		if err != nil {
			return nil, err
		}
		subject := "the manifest " + child.Digest.String() + " of " + res.Ref
		if child.Size > lim.DocumentSize {
			return nil, lim.Over(subject, "is larger than", limits.KeyDocumentSize)
		}
		cd, err := remote.Get(from.Context().Digest(child.Digest.String()), opts.remote(ctx, from.Context())...)
		if err != nil {
			var le *limits.Error
			if errors.As(err, &le) {
				return nil, fmt.Errorf("pulling %s: %w", res.Ref, le)
			}
			return nil, fetchErr(ref, err, nil)
		}
		if cd.Digest != child.Digest || int64(len(cd.Manifest)) != child.Size {
			return nil, fmt.Errorf("%s: the registry served %d bytes with digest %s, the index names %d bytes", subject, len(cd.Manifest), cd.Digest, child.Size)
		}
		if doc, err = decodeDocument(string(cd.MediaType), cd.Manifest, lim, subject); err != nil {
			return nil, err
		}
		if child.MediaType != "" && child.MediaType != doc.mt {
			return nil, fmt.Errorf("%s is %s but its index says %s", subject, doc.mt, child.MediaType)
		}
		manifestBytes, manifestDesc = cd.Manifest, cd.Descriptor
		manifestDesc.MediaType = doc.mt
		manifestDesc.Platform = child.Platform
	}
	m := doc.manifest
	res.Digest = manifestDesc.Digest
	if err := checkDigest(res.Digest); err != nil {
		return nil, fmt.Errorf("the manifest of %s: %w", res.Ref, err)
	}
	if h, _, err := v1.SHA256(bytes.NewReader(manifestBytes)); err != nil || h != res.Digest {
		return nil, fmt.Errorf("%s: manifest digest mismatch: got %s, want %s", res.Ref, h, res.Digest)
	}
	if err := checkLayers(m, lim, res.Ref); err != nil {
		return nil, err
	}
	repo := from.Context()

	// Config first: it names the diff IDs the layers must unpack to.
	cfgBytes, err := fetchSmall(ctx, repo, m.Config, opts, res.Ref)
	if err != nil {
		return nil, err
	}
	cfg, err := parseConfig(cfgBytes, res.Ref)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%s: the config lists %d layers but the manifest %d", res.Ref, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	res.Config = cfg
	if _, err := st.WriteBlob(m.Config.Digest, m.Config.Size, bytes.NewReader(cfgBytes)); err != nil {
		return nil, err
	}

	res.Chains = store.ChainIDs(cfg.RootFS.DiffIDs)
	var jobs []store.UnpackJob
	if opts.Unpack != nil {
		for i, l := range m.Layers {
			if st.HasLayer(res.Chains[i]) {
				continue
			}
			j := store.UnpackJob{Chain: res.Chains[i], DiffID: cfg.RootFS.DiffIDs[i], Blob: l.Digest, MediaType: string(l.MediaType)}
			for k := i - 1; k >= 0; k-- {
				j.Lowers = append(j.Lowers, res.Chains[k].Hex)
			}
			jobs = append(jobs, j)
		}
	}
	if err := fetchAndUnpack(ctx, st, repo, m.Layers, jobs, opts, progress, res); err != nil {
		return nil, err
	}

	// The store holds OCI manifests only, so that skopeo and umoci (which
	// accept nothing else in an OCI layout) can read it. A Docker schema 2
	// manifest is rewritten with the OCI media types; the blobs are the same.
	ociBytes, err := toOCI(m, manifestBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", res.Ref, err)
	}
	storedDigest, err := st.WriteBlobBytes(ociBytes)
	if err != nil {
		return nil, err
	}

	d := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(ociBytes)), Digest: storedDigest, Platform: manifestDesc.Platform}
	if d.Platform == nil {
		d.Platform = &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	}
	if err := st.Tag(res.Ref, d, store.Origin{ManifestDigest: res.Digest.String(), SourceDigest: res.SourceDigest.String(), From: res.From}); err != nil {
		return nil, err
	}
	return res, nil
}

// fetchAndUnpack downloads the layers into the store and unpacks jobs at the
// same time: the unpack stage starts at once, and each layer's data reaches
// it, through a store.BlobFeed and the stream pipe, as it lands in the
// store's temporary file. The stage renames a layer into place only after
// its blob is stored and verified. If a download fails, the stream ends
// early and the stage keeps nothing; if unpacking fails, the downloads stop.
func fetchAndUnpack(ctx context.Context, st *store.Store, repo name.Repository, layers []v1.Descriptor, jobs []store.UnpackJob, opts Options, progress func(Event), res *Result) error {
	if len(jobs) == 0 {
		return downloadLayers(ctx, st, repo, layers, opts, progress, res, nil)
	}
	feeds := map[v1.Hash]*store.BlobFeed{}
	for _, j := range jobs {
		if feeds[j.Blob] == nil {
			feeds[j.Blob] = store.NewBlobFeed()
		}
	}
	defer func() {
		for _, f := range feeds {
			f.Close()
		}
	}()
	pr, pw := io.Pipe()
	dctx, stopDownloads := context.WithCancel(ctx)
	defer stopDownloads()
	var unpackErr error
	unpacked := make(chan struct{})
	go func() {
		defer close(unpacked)
		unpackErr = opts.Unpack(ctx, jobs, pr, opts.Limits)
		pr.CloseWithError(errors.New("the unpacker has stopped")) // the feeder's writes fail from now on
		if unpackErr != nil {
			stopDownloads()
		}
	}()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		defer pw.Close() // without the end frame of the current job on failure
		sw := &store.StreamWriter{W: pw}
		buf := make([]byte, 1<<20)
		for _, j := range jobs {
			progress(Event{ID: short(j.Blob), Kind: "layer", State: "unpacking"})
			if _, err := io.CopyBuffer(sw, feeds[j.Blob].Reader(), buf); err != nil {
				return // the download's or the stage's error is reported
			}
			if err := sw.EndJob(); err != nil {
				return
			}
		}
	}()
	dlErr := downloadLayers(dctx, st, repo, layers, opts, progress, res, feeds)
	if dlErr != nil {
		for _, f := range feeds {
			f.Fail(dlErr)
		}
	}
	<-fed
	<-unpacked
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case dlErr != nil && (unpackErr == nil || !errors.Is(dlErr, context.Canceled)):
		return dlErr
	case unpackErr != nil:
		return unpackErr
	}
	for _, j := range jobs {
		progress(Event{ID: short(j.Blob), Kind: "layer", State: "unpacked"})
	}
	res.Unpacked = len(jobs)
	return nil
}

// downloadLayers stores the layers' blobs, reporting to the feeds of those
// in feeds.
func downloadLayers(ctx context.Context, st *store.Store, repo name.Repository, layers []v1.Descriptor, opts Options, progress func(Event), res *Result, feeds map[v1.Hash]*store.BlobFeed) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, opts.Jobs)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	seen := map[v1.Hash]bool{}
	for _, l := range layers {
		if seen[l.Digest] {
			continue
		}
		seen[l.Digest] = true
		feed := feeds[l.Digest]
		if st.HasBlob(l.Digest, l.Size) {
			if feed != nil {
				if err := st.FeedStored(feed, l.Digest, l.Size); err != nil {
					cancel()
					wg.Wait()
					return fmt.Errorf("reading layer %s: %w", l.Digest, err)
				}
			}
			progress(Event{ID: short(l.Digest), Kind: "layer", State: "exists", Total: l.Size, Done: l.Size})
			continue
		}
		progress(Event{ID: short(l.Digest), Kind: "layer", State: "waiting", Total: l.Size})
		wg.Add(1)
		go func(l v1.Descriptor) {
			defer wg.Done()
			if feed != nil {
				defer feed.Fail(errors.New("the download did not finish"))
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			n, wrote, err := fetchLayer(ctx, st, repo, l, opts, progress, feed)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			if wrote {
				res.Downloaded++
				res.Bytes += n
			}
		}(l)
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func fetchLayer(ctx context.Context, st *store.Store, repo name.Repository, l v1.Descriptor, opts Options, progress func(Event), feed *store.BlobFeed) (int64, bool, error) {
	id := short(l.Digest)
	rl, err := remote.Layer(repo.Digest(l.Digest.String()), opts.remote(ctx, repo)...)
	if err != nil {
		return 0, false, fmt.Errorf("fetching layer %s: %w", l.Digest, err)
	}
	rc, err := rl.Compressed()
	if err != nil {
		return 0, false, fmt.Errorf("fetching layer %s: %s", l.Digest, shortErr(err))
	}
	defer rc.Close()
	cr := &countingReader{r: rc, report: func(done int64) {
		progress(Event{ID: id, Kind: "layer", State: "downloading", Total: l.Size, Done: done})
	}}
	wrote, err := st.WriteBlobFeed(l.Digest, l.Size, cr, feed)
	if err != nil {
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		return 0, false, fmt.Errorf("fetching layer %s: %w", l.Digest, err)
	}
	progress(Event{ID: id, Kind: "layer", State: "done", Total: l.Size, Done: l.Size})
	return cr.n, wrote, nil
}

func fetchSmall(ctx context.Context, repo name.Repository, d v1.Descriptor, opts Options, ref string) ([]byte, error) {
	if d.Size > opts.Limits.DocumentSize {
		return nil, opts.Limits.Over("the image config of "+ref, "is larger than", limits.KeyDocumentSize)
	}
	if len(d.Data) > 0 {
		if h, _, _ := v1.SHA256(bytes.NewReader(d.Data)); h != d.Digest || int64(len(d.Data)) != d.Size {
			return nil, fmt.Errorf("the image config of %s: the data embedded in the manifest does not match its digest or size", ref)
		}
		return d.Data, nil
	}
	rl, err := remote.Layer(repo.Digest(d.Digest.String()), opts.remote(ctx, repo)...)
	if err != nil {
		return nil, fmt.Errorf("fetching config %s: %w", d.Digest, err)
	}
	rc, err := rl.Compressed() // verifies size and digest at EOF
	if err != nil {
		return nil, fmt.Errorf("fetching config %s: %s", d.Digest, shortErr(err))
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("fetching config %s: %w", d.Digest, err)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(b)); h != d.Digest {
		return nil, fmt.Errorf("config %s: digest mismatch (got %s)", d.Digest, h)
	}
	return b, nil
}

type countingReader struct {
	r      io.Reader
	n      int64
	last   int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= 256<<10 || err == io.EOF {
		c.last = c.n
		c.report(c.n)
	}
	return n, err
}

func short(h v1.Hash) string {
	if len(h.Hex) < 12 {
		return h.Hex
	}
	return h.Hex[:12]
}

func (o Options) remote(ctx context.Context, ref interface{ RegistryStr() string }) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.Keychain),
		remote.WithPlatform(*o.Platform),
		remote.WithUserAgent("devbox"),
	}
	t := o.Transport
	if t == nil && o.Registries.IsInsecure(ref.RegistryStr()) {
		tr := remote.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user listed this registry as insecure
		t = tr
	}
	if t == nil {
		t = remote.DefaultTransport
	}
	return append(opts, remote.WithTransport(&limitTransport{base: t, lim: o.Limits.Resolve()}))
}

// shortErr drops ggcr's long URL prefixes from transport errors.
func shortErr(err error) string {
	var te *transport.Error
	if errors.As(err, &te) {
		var parts []string
		for _, d := range te.Errors {
			parts = append(parts, string(d.Code)+": "+d.Message)
		}
		if len(parts) == 0 {
			return fmt.Sprintf("HTTP %d", te.StatusCode)
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

func fetchErr(ref name.Reference, err error, tried []string) error {
	full := FullName(ref)
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			// Docker Hub answers "access denied" for a repository that
			// does not exist, so this may be a typo too.
			return notFound{fmt.Errorf("pulling %s: access denied (%s) (hint: log in with docker login or podman login %s, or check the name)", full, shortErr(err), ref.Context().RegistryStr())}
		case http.StatusNotFound:
			return notFound{fmt.Errorf("pulling %s: image not found (%s) (hint: check the name and tag; devbox aliases lists the short names)", full, shortErr(err))}
		case http.StatusTooManyRequests:
			return fmt.Errorf("pulling %s: rate limited by the registry (hint: log in, or configure a registry mirror)", full)
		}
	}
	msg := shortErr(err)
	if len(tried) > 1 {
		msg = strings.Join(tried, "; ")
	}
	hint := "check your network, or configure a registry mirror in " + configHint()
	if strings.Contains(msg, "MANIFEST_UNKNOWN") || strings.Contains(msg, "NAME_UNKNOWN") {
		// A registry that answered does not have it: most likely a wrong
		// name or tag, whatever the others (unreachable) said.
		return notFound{fmt.Errorf("pulling %s: image not found: %s (hint: check the name and tag, devbox aliases lists the short names; if they are right, the registries that did not answer may have it: check your network)", full, msg)}
	}
	if strings.Contains(msg, "http: server gave HTTP response to HTTPS client") {
		hint = "the registry speaks plain HTTP: list it under [registries] insecure in " + configHint()
	}
	return fmt.Errorf("pulling %s: %s (hint: %s)", full, msg, hint)
}

func configHint() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return d + "/devbox/config.toml"
	}
	return "~/.config/devbox/config.toml"
}

// toOCI returns the manifest with OCI media types (the input itself when it
// already is one).
func toOCI(m *v1.Manifest, raw []byte) ([]byte, error) {
	if m.MediaType == types.OCIManifestSchema1 || (m.MediaType == "" && m.Config.MediaType == types.OCIConfigJSON) {
		return raw, nil
	}
	o := *m
	o.MediaType = types.OCIManifestSchema1
	o.Config.MediaType = types.OCIConfigJSON
	o.Layers = make([]v1.Descriptor, len(m.Layers))
	for i, l := range m.Layers {
		switch l.MediaType {
		case types.DockerLayer:
			l.MediaType = types.OCILayer
		case types.DockerUncompressedLayer:
			l.MediaType = types.OCIUncompressedLayer
		case types.DockerForeignLayer:
			l.MediaType = types.OCIRestrictedLayer
		}
		o.Layers[i] = l
	}
	return json.Marshal(&o)
}
