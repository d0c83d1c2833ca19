package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/devbox-dev/devbox/image/store"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// An OCI archive is a tar of an OCI image layout (oci-layout, index.json,
// blobs/sha256/…), as podman save --format oci-archive and skopeo's
// oci-archive: transport write it.

// Limits on an archive given to Load (all of it is hostile input).
const (
	maxArchiveEntries = 100000
	maxArchiveIndex   = 4 << 20
)

// Save writes the stored image ref as an OCI archive to w: its manifest,
// config and layer blobs as stored, index.json naming it (annotation
// org.opencontainers.image.ref.name = its full reference). Entries have
// fixed times, owners and modes: saving an image twice gives the same
// bytes.
func Save(st *store.Store, ref string, w io.Writer) (*store.Image, error) {
	unlockGC, err := st.GCLock(false)
	if err != nil {
		return nil, err
	}
	defer unlockGC()
	img, err := st.Lookup(ref)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(img.ID)
	if err != nil {
		return nil, err
	}
	raw, err := st.ReadBlob(h)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", img.Ref, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", img.Ref, err)
	}
	blobs := append([]v1.Descriptor{m.Config}, m.Layers...)
	for _, b := range blobs {
		if !st.HasBlob(b.Digest, b.Size) {
			return nil, fmt.Errorf("%s lacks its blob %s in the store (hint: pull the image again with devbox pull, or run devbox verify)", img.Ref, b.Digest)
		}
	}
	desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(raw)), Digest: h,
		Annotations: map[string]string{store.AnnotationRefName: img.Ref}}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{desc}})
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	dir := func(n string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: 0o755, ModTime: epoch})
	}
	file := func(n string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, r, size)
		return err
	}
	layoutFile := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := file("oci-layout", int64(len(layoutFile)), bytes.NewReader(layoutFile)); err != nil {
		return nil, err
	}
	if err := file("index.json", int64(len(index)), bytes.NewReader(index)); err != nil {
		return nil, err
	}
	if err := dir("blobs/"); err != nil {
		return nil, err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return nil, err
	}
	if err := file("blobs/sha256/"+h.Hex, int64(len(raw)), bytes.NewReader(raw)); err != nil {
		return nil, err
	}
	seen := map[v1.Hash]bool{h: true}
	for _, b := range blobs {
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		f, err := st.OpenBlob(b.Digest)
		if err != nil {
			return nil, err
		}
		err = file("blobs/sha256/"+b.Digest.Hex, b.Size, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("writing blob %s: %w", b.Digest, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &img, nil
}

// archive is the index of an OCI archive file: where each blob's bytes
// are, read in place.
type archive struct {
	f     *os.File
	index []byte
	blobs map[string]section // by hex digest
}

type section struct{ off, size int64 }

// offsetReader counts what tar.Reader consumed, so that a header's data
// offset is known; Seek lets the reader skip data without reading it.
type offsetReader struct {
	f *os.File
	n int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.f.Read(p)
	o.n += int64(n)
	return n, err
}

func (o *offsetReader) Seek(off int64, whence int) (int64, error) {
	n, err := o.f.Seek(off, whence)
	if err == nil {
		o.n = n
	}
	return n, err
}

// readArchive indexes the OCI archive f strictly: only the layout's
// entries (docker's manifest.json and repositories are ignored), regular
// files and directories, no duplicates, bounded counts and sizes. Blob
// contents are checked when they are read (size and digest, as in a pull).
func readArchive(f *os.File) (*archive, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("the archive must be a file: %w", err)
	}
	or := &offsetReader{f: f}
	tr := tar.NewReader(or)
	a := &archive{f: f, blobs: map[string]section{}}
	seen := map[string]bool{}
	sawLayout := false
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w (hint: devbox load reads OCI archives, as devbox save and podman save --format oci-archive write them)", err)
		}
		if i >= maxArchiveEntries {
			return nil, fmt.Errorf("the archive has more than %d entries", maxArchiveEntries)
		}
		n := strings.TrimPrefix(h.Name, "./")
		clean := path.Clean(n)
		if n == "" || clean == "." {
			continue
		}
		if seen[clean] {
			return nil, fmt.Errorf("the archive has %q twice", clean)
		}
		seen[clean] = true
		switch h.Typeflag {
		case tar.TypeDir:
			if clean != "blobs" && clean != "blobs/sha256" {
				return nil, fmt.Errorf("unexpected directory %q in the archive", h.Name)
			}
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("unexpected entry %q (type %q) in the archive: an OCI archive holds regular files only", h.Name, h.Typeflag)
		}
		if h.Size < 0 {
			return nil, fmt.Errorf("entry %q has a negative size", h.Name)
		}
		switch {
		case clean == "oci-layout":
			b, err := io.ReadAll(io.LimitReader(tr, 4096))
			var l struct {
				Version string `json:"imageLayoutVersion"`
			}
			if err != nil || json.Unmarshal(b, &l) != nil || l.Version == "" {
				return nil, errors.New("the archive's oci-layout file is not valid")
			}
			sawLayout = true
		case clean == "index.json":
			if h.Size > maxArchiveIndex {
				return nil, fmt.Errorf("the archive's index.json is too large (%d bytes)", h.Size)
			}
			if a.index, err = io.ReadAll(io.LimitReader(tr, maxArchiveIndex)); err != nil {
				return nil, fmt.Errorf("reading the archive: %w", err)
			}
		case clean == "manifest.json" || clean == "repositories":
			// docker save's own files, next to its OCI layout.
		case strings.HasPrefix(clean, "blobs/sha256/") && isHex64(strings.TrimPrefix(clean, "blobs/sha256/")):
			a.blobs[strings.TrimPrefix(clean, "blobs/sha256/")] = section{off: or.n, size: h.Size}
		default:
			return nil, fmt.Errorf("unexpected entry %q in the archive", h.Name)
		}
	}
	if !sawLayout || a.index == nil {
		return nil, errors.New("not an OCI archive: no oci-layout or index.json (hint: devbox load reads OCI archives, as devbox save and podman save --format oci-archive write them)")
	}
	return a, nil
}

func isHex64(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// Load stores the image of the OCI archive file as as (a full reference;
// empty: the name the archive gives it). The archive is hostile input and
// goes through the very checks of a pull: it is served to Pull as a
// registry would serve it, from the file in place, so the manifest,
// config, diff_ids, blob digests and sizes, and the layers' contents are
// checked, unpacked and stored exactly as pulled ones (opts.Registries,
// Keychain and Transport are not used).
func Load(ctx context.Context, st *store.Store, file *os.File, as string, opts Options) (*Result, error) {
	a, err := readArchive(file)
	if err != nil {
		return nil, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(a.index))
	if err != nil {
		return nil, fmt.Errorf("reading the archive's index.json: %w", err)
	}
	var top *v1.Descriptor
	var names []string
	for i := range idx.Manifests {
		d := &idx.Manifests[i]
		n := archiveName(d.Annotations)
		names = append(names, n)
		if len(idx.Manifests) == 1 || (as != "" && n == as) {
			top = d
		}
	}
	switch {
	case len(idx.Manifests) == 0:
		return nil, errors.New("the archive's index.json names no image")
	case top == nil:
		return nil, fmt.Errorf("the archive holds %d images (%s) (hint: name the one to load)", len(idx.Manifests), strings.Join(names, ", "))
	}
	if as == "" {
		as = archiveName(top.Annotations)
	}
	if as == "" {
		return nil, errors.New("the archive does not name its image (hint: give the name to store it under, e.g. devbox load -i FILE dev:1)")
	}
	full, err := LocalName(as)
	if err != nil {
		return nil, err
	}
	ref, err := name.ParseReference(full)
	if err != nil {
		return nil, err
	}
	opts.Registries = Registries{}
	opts.Keychain = authn.NewMultiKeychain()
	opts.Transport = &archiveTransport{a: a, top: *top, tag: ref.Identifier()}
	res, err := Pull(ctx, st, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("loading the archive: %s", strings.TrimPrefix(err.Error(), "pulling "+full+": "))
	}
	return res, nil
}

// archiveName is the reference an index entry gives its image, when it
// gives a full one: containerd's image name, else the OCI ref name unless
// it is a bare tag (as podman writes for oci-archive:FILE:TAG).
func archiveName(ann map[string]string) string {
	if n := ann["io.containerd.image.name"]; n != "" {
		return n
	}
	n := ann[store.AnnotationRefName]
	if n == "" || !strings.ContainsAny(n, "/:") {
		return ""
	}
	return n
}

// archiveTransport answers the registry API requests of a pull from the
// archive: the top manifest under any repository for its tag or digest,
// other blobs (manifests of an index, configs, layers) by digest.
type archiveTransport struct {
	a   *archive
	top v1.Descriptor
	tag string
}

func (t *archiveTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := req.URL.Path
	resp := &http.Response{Request: req, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		StatusCode: http.StatusNotFound, Body: io.NopCloser(strings.NewReader(`{"errors":[{"code":"NAME_UNKNOWN","message":"not in the archive"}]}`))}
	resp.Header.Set("Content-Type", "application/json")
	if req.Body != nil {
		req.Body.Close()
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		resp.StatusCode = http.StatusMethodNotAllowed
		return resp, nil
	}
	if p == "/v2/" || p == "/v2" {
		resp.StatusCode, resp.Body = http.StatusOK, io.NopCloser(strings.NewReader("{}"))
		return resp, nil
	}
	i := strings.LastIndex(p, "/")
	j := strings.LastIndex(p[:max(i, 0)], "/")
	if !strings.HasPrefix(p, "/v2/") || i < 0 || j < 0 {
		return resp, nil
	}
	kind, id := p[j+1:i], p[i+1:]
	var hex string
	var mt types.MediaType
	switch {
	case kind == "manifests" && (id == t.tag || id == t.top.Digest.String()):
		hex, mt = t.top.Digest.Hex, t.top.MediaType
	case strings.HasPrefix(id, "sha256:") && (kind == "manifests" || kind == "blobs"):
		hex = strings.TrimPrefix(id, "sha256:")
	default:
		return resp, nil
	}
	s, ok := t.a.blobs[hex]
	if !ok {
		resp.Body = io.NopCloser(strings.NewReader(`{"errors":[{"code":"BLOB_UNKNOWN","message":"blob sha256:` + hex + ` is not in the archive"}]}`))
		return resp, nil
	}
	body := io.NewSectionReader(t.a.f, s.off, s.size)
	if kind == "manifests" {
		if s.size > maxArchiveIndex {
			resp.StatusCode = http.StatusRequestEntityTooLarge
			return resp, nil
		}
		if mt == "" {
			b, err := io.ReadAll(io.NewSectionReader(t.a.f, s.off, s.size))
			if err != nil {
				return nil, err
			}
			mt = sniffMediaType(b)
		}
		resp.Header.Set("Content-Type", string(mt))
	} else {
		resp.Header.Set("Content-Type", "application/octet-stream")
	}
	resp.Header.Set("Docker-Content-Digest", "sha256:"+hex)
	resp.Header.Set("Content-Length", strconv.FormatInt(s.size, 10))
	resp.StatusCode, resp.ContentLength = http.StatusOK, s.size
	resp.Body = io.NopCloser(body)
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
	}
	return resp, nil
}

// sniffMediaType is a manifest's media type from its own mediaType field
// or, for OCI manifests that omit it, its shape.
func sniffMediaType(b []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(b, &m) == nil && m.MediaType != "" {
		return m.MediaType
	}
	if m.Manifests != nil {
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}
