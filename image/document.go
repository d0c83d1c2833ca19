package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/devbox-dev/devbox/image/limits"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A registry's documents (indexes and manifests) are read strictly: the
// media type the registry sends, the document's own mediaType and its shape
// must agree, so that one document cannot be read as an index by one tool
// and as a manifest by another (CVE-2021-41190, fixed in the OCI
// distribution and image specs by requiring that agreement). Every digest is
// checked before it names anything.

// document is a decoded index or image manifest: exactly one is set.
type document struct {
	index    *v1.IndexManifest
	manifest *v1.Manifest
	mt       types.MediaType // the agreed media type
}

// docShape holds the fields that tell an index from a manifest.
type docShape struct {
	SchemaVersion *int            `json:"schemaVersion"`
	MediaType     *string         `json:"mediaType"`
	Manifests     json.RawMessage `json:"manifests"`
	Config        json.RawMessage `json:"config"`
	Layers        json.RawMessage `json:"layers"`
	FSLayers      json.RawMessage `json:"fsLayers"`
}

func isIndexType(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isManifestType(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// decodeDocument decodes raw, served with the Content-Type contentType, as
// an index or an image manifest. subject names it in errors.
func decodeDocument(contentType string, raw []byte, lim limits.Limits, subject string) (*document, error) {
	if int64(len(raw)) > lim.DocumentSize {
		return nil, lim.Over(subject, "is larger than", limits.KeyDocumentSize)
	}
	ct := types.MediaType("")
	if contentType != "" {
		m, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, fmt.Errorf("%s: the registry sent the unreadable media type %q", subject, contentType)
		}
		ct = types.MediaType(m)
	}
	if err := checkKeys(raw); err != nil {
		return nil, fmt.Errorf("%s %w", subject, err)
	}
	var shape docShape
	if err := json.Unmarshal(raw, &shape); err != nil {
		return nil, fmt.Errorf("%s is not a JSON document: %s", subject, jsonErr(err))
	}
	own := types.MediaType("")
	if shape.MediaType != nil {
		own = types.MediaType(*shape.MediaType)
		if own == "" {
			return nil, fmt.Errorf("%s has an empty mediaType", subject)
		}
	}
	if ct == types.DockerManifestSchema1 || ct == types.DockerManifestSchema1Signed || own == types.DockerManifestSchema1 ||
		own == types.DockerManifestSchema1Signed || shape.FSLayers != nil {
		return nil, fmt.Errorf("%s uses the Docker schema 1 manifest format, retired in 2019 (hint: ask the publisher to re-push it, or pull another tag)", subject)
	}
	// The registry's media type decides; a generic one (some registries
	// send application/json) defers to the document's own.
	mt := ct
	switch ct {
	case "", "application/json", "text/plain", "application/octet-stream":
		if own == "" {
			return nil, fmt.Errorf("%s has no media type: the registry sent %q and the document names none", subject, contentType)
		}
		mt = own
	default:
		if own != "" && own != ct {
			return nil, fmt.Errorf("%s is served as %s but says it is %s", subject, ct, own)
		}
	}
	if !isIndexType(mt) && !isManifestType(mt) {
		return nil, fmt.Errorf("%s: unsupported media type %q", subject, mt)
	}
	if shape.SchemaVersion == nil || *shape.SchemaVersion != 2 {
		return nil, fmt.Errorf("%s: schemaVersion is not 2", subject)
	}
	d := &document{mt: mt}
	if isIndexType(mt) {
		if shape.Config != nil || shape.Layers != nil {
			return nil, fmt.Errorf("%s is an index (%s) with the fields of an image manifest (config, layers)", subject, mt)
		}
		if shape.Manifests == nil {
			return nil, fmt.Errorf("%s is an index (%s) without manifests", subject, mt)
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %s", subject, jsonErr(err))
		}
		for i, m := range idx.Manifests {
			if err := checkDescriptor(m, fmt.Sprintf("%s: manifests[%d]", subject, i)); err != nil {
				return nil, err
			}
		}
		d.index = idx
		return d, nil
	}
	if shape.Manifests != nil {
		return nil, fmt.Errorf("%s is an image manifest (%s) with the field of an index (manifests)", subject, mt)
	}
	if shape.Config == nil {
		return nil, fmt.Errorf("%s is an image manifest (%s) without a config", subject, mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %s", subject, jsonErr(err))
	}
	if err := checkDescriptor(m.Config, subject+": config"); err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(l, fmt.Sprintf("%s: layers[%d]", subject, i)); err != nil {
			return nil, err
		}
	}
	d.manifest = m
	return d, nil
}

// documentKeys are the top-level keys of indexes and manifests, as the
// specs spell them.
var documentKeys = map[string]string{
	"schemaversion": "schemaVersion", "mediatype": "mediaType", "artifacttype": "artifactType",
	"manifests": "manifests", "config": "config", "layers": "layers", "subject": "subject",
	"annotations": "annotations", "fslayers": "fsLayers",
}

// checkKeys refuses a document whose top-level object repeats a key or
// spells a known key in another case: Go's decoder takes the last of
// repeated keys and matches keys without regard to case, other parsers
// differ, and a document must not mean one thing to devbox and another to
// the registry or another tool.
func checkKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("is not a JSON document: %s", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("is not a JSON document: not an object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("is not a JSON document: %s", jsonErr(err))
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("has the key %q twice", shortText(key))
		}
		seen[key] = true
		if want, ok := documentKeys[strings.ToLower(key)]; ok && want != key {
			return fmt.Errorf("has the key %q, not %q", shortText(key), want)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("is not a JSON document: %s", jsonErr(err))
		}
	}
	return nil
}

// checkDescriptor checks a descriptor's digest and size.
func checkDescriptor(d v1.Descriptor, what string) error {
	if err := checkDigest(d.Digest); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%s: negative size %d", what, d.Size)
	}
	return nil
}

// checkDigest accepts a sha256 digest of 64 lowercase hex digits. sha512,
// registered by the OCI image spec, is recognised and refused as
// unsupported; any other algorithm is refused.
func checkDigest(h v1.Hash) error {
	want := 0
	switch h.Algorithm {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return fmt.Errorf("digest %q: unknown algorithm", shortText(h.String()))
	}
	if len(h.Hex) != want || strings.Trim(h.Hex, "0123456789abcdef") != "" {
		return fmt.Errorf("digest %q: not %d lowercase hex digits", shortText(h.String()), want)
	}
	if h.Algorithm != "sha256" {
		return fmt.Errorf("digest %q: the %s algorithm is not supported (only sha256)", shortText(h.String()), h.Algorithm)
	}
	return nil
}

// shortText cuts s for an error message and quotes control characters
// away.
func shortText(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// jsonErr is a JSON error without the Go type names.
func jsonErr(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("field %s has the wrong type (%s)", te.Field, te.Value)
	}
	return shortText(err.Error())
}

// limitTransport bounds the bodies of a registry's answers: anything but a
// blob's content (manifests, indexes, tokens, error bodies) may be at most
// max bytes, so that a hostile registry cannot make a pull hold gigabytes
// in memory. Blob content streams to the store, bounded by its descriptor's
// size.
type limitTransport struct {
	base http.RoundTripper
	lim  limits.Limits
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if resp.StatusCode/100 == 2 && isBlobRequest(req) {
		return resp, nil
	}
	what := "an answer of the registry " + req.URL.Host
	if strings.Contains(req.URL.Path, "/manifests/") {
		what = "the manifest or index " + shortText(req.URL.Host+req.URL.Path)
	}
	lr := &limitedBody{rc: resp.Body, left: t.lim.DocumentSize, over: t.lim.Over(what, "is larger than", limits.KeyDocumentSize)}
	if resp.ContentLength > t.lim.DocumentSize {
		lr.left = -1 // fail at once, read nothing
	}
	resp.Body = lr
	return resp, nil
}

// isBlobRequest reports whether req, or the request it is a redirect of,
// fetches a blob.
func isBlobRequest(req *http.Request) bool {
	for r := req; r != nil; {
		if strings.Contains(r.URL.Path, "/blobs/") {
			return true
		}
		if r.Response == nil {
			break
		}
		r = r.Response.Request
	}
	return false
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	over error
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.over
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, l.over
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }

// maxOffers is how many platforms an error lists.
const maxOffers = 12

// pickChild chooses the entry of idx to follow for plat: the first image
// manifest for it, else the first nested index that may hold one.
func pickChild(idx *v1.IndexManifest, plat v1.Platform, ref string) (*v1.Descriptor, error) {
	var offers []string
	seen := map[string]bool{}
	var nested *v1.Descriptor
	for i := range idx.Manifests {
		m := &idx.Manifests[i]
		if m.Platform != nil && m.Platform.OS == "unknown" { // attestations
			continue
		}
		if m.Platform != nil {
			if p := shortText(PlatformString(*m.Platform)); !seen[p] {
				seen[p] = true
				offers = append(offers, p)
			}
		}
		switch {
		case isManifestType(m.MediaType) && matches(m.Platform, plat):
			return m, nil
		case isIndexType(m.MediaType) && nested == nil && (m.Platform == nil || matches(m.Platform, plat)):
			nested = m
		}
	}
	if nested != nil {
		return nested, nil
	}
	if len(offers) > maxOffers {
		offers = append(offers[:maxOffers], fmt.Sprintf("and %d more", len(offers)-maxOffers))
	}
	return nil, fmt.Errorf("%s has no image for %s; it offers %s (hint: pick one with --platform)",
		ref, PlatformString(plat), strings.Join(offers, ", "))
}

// checkLayers applies the limits on the number and the sizes of the
// layers that the manifest declares, before anything is downloaded.
func checkLayers(m *v1.Manifest, lim limits.Limits, ref string) error {
	if len(m.Layers) > lim.Layers {
		return lim.Over(fmt.Sprintf("%s has %d layers,", ref, len(m.Layers)), "more than", limits.KeyLayers)
	}
	var total int64
	for _, l := range m.Layers {
		if l.Size > lim.LayerSize {
			return lim.Over(fmt.Sprintf("layer %s of %s (%s compressed)", l.Digest, ref, limits.FormatSize(l.Size)), "is larger than", limits.KeyLayerSize)
		}
		total += l.Size
		if total > lim.ImageSize {
			return lim.Over(ref+"'s layers", "are larger than", limits.KeyImageSize)
		}
	}
	return nil
}

// parseConfig decodes an image config and checks its diff_ids.
func parseConfig(b []byte, ref string) (*v1.ConfigFile, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("reading the image config of %s: %s", ref, jsonErr(err))
	}
	if cfg.RootFS.Type != "" && cfg.RootFS.Type != "layers" {
		return nil, fmt.Errorf("the image config of %s: rootfs type %q is not \"layers\"", ref, shortText(cfg.RootFS.Type))
	}
	for i, d := range cfg.RootFS.DiffIDs {
		if err := checkDigest(d); err != nil {
			return nil, fmt.Errorf("the image config of %s: rootfs.diff_ids[%d]: %w", ref, i, err)
		}
	}
	return cfg, nil
}
