package image

import (
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/image/limits"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzDecodeDocument feeds the strict decoder of indexes and manifests
// arbitrary Content-Types and bodies. Whatever it accepts is exactly one
// of the two, agrees with its media type, and names only valid sha256
// digests; whatever it refuses is refused in one line.
func FuzzDecodeDocument(f *testing.F) {
	d := "sha256:" + strings.Repeat("a", 64)
	man := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d + `","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d + `","size":3}]}`
	idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d + `","size":5,"platform":{"os":"linux","architecture":"amd64"}}]}`
	for _, s := range [][2]string{
		{ociManifest, man},
		{ociIndex, idx},
		{ociManifest, idx},
		{ociIndex, man},
		{"application/json", man},
		{"", idx},
		{ociManifest + "; charset=utf-8", man},
		{"application/vnd.docker.distribution.manifest.v2+json", strings.Replace(man, `"mediaType":"application/vnd.oci.image.manifest.v1+json",`, "", 1)},
		{"application/vnd.docker.distribution.manifest.list.v2+json", `{"schemaVersion":2,"manifests":[]}`},
		{ociManifest, strings.Replace(man, `"schemaVersion":2,`, `"schemaVersion":2,"manifests":[],`, 1)},
		{ociIndex, strings.Replace(idx, `"schemaVersion":2,`, `"schemaVersion":2,"layers":[],`, 1)},
		{ociManifest, strings.Replace(man, d, "sha512:"+strings.Repeat("b", 128), 1)},
		{ociManifest, strings.Replace(man, d, "sha256:../../x", 1)},
		{ociManifest, `{"schemaVersion":1,"fsLayers":[]}`},
		{"a/b; c", "null"},
		{ociManifest, "[]"},
		{ociManifest, `{"schemaVersion":2,"mediaType":"","config":{}}`},
		{ociManifest, `{"schemaVersion":2,"MediaType":"x","mediaType":"y","config":{}}`},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	lim := limits.Limits{DocumentSize: 64 << 10}.Resolve()
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		doc, err := decodeDocument(ct, body, lim, "the manifest of x")
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.Contains(msg, "the manifest of x") {
				t.Fatalf("error %q is not one line naming the document", msg)
			}
			return
		}
		check := func(h v1.Hash) {
			if h.Algorithm != "sha256" || len(h.Hex) != 64 || strings.Trim(h.Hex, "0123456789abcdef") != "" {
				t.Fatalf("accepted digest %q", h)
			}
		}
		switch {
		case doc.index != nil && doc.manifest == nil:
			if !isIndexType(doc.mt) {
				t.Fatalf("index with media type %q", doc.mt)
			}
			for _, m := range doc.index.Manifests {
				check(m.Digest)
			}
		case doc.manifest != nil && doc.index == nil:
			if !isManifestType(doc.mt) {
				t.Fatalf("manifest with media type %q", doc.mt)
			}
			check(doc.manifest.Config.Digest)
			for _, l := range doc.manifest.Layers {
				check(l.Digest)
				if l.Size < 0 {
					t.Fatalf("negative size accepted")
				}
			}
		default:
			t.Fatalf("decoded %+v", doc)
		}
	})
}

// FuzzParseConfig: an accepted image config has only valid diff_ids.
func FuzzParseConfig(f *testing.F) {
	d := "sha256:" + strings.Repeat("c", 64)
	for _, s := range []string{
		`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + d + `"]}}`,
		`{"rootfs":{"type":"layers","diff_ids":["sha512:` + strings.Repeat("d", 128) + `"]}}`,
		`{"rootfs":{"type":"other","diff_ids":[]}}`,
		`{"rootfs":{"diff_ids":["sha256:abc"]}}`,
		`{"config":{"Env":["A=B"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[]}}`,
		`{"created":"not a time"}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parseConfig(b, "x")
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q is not one line", err)
			}
			return
		}
		for _, h := range cfg.RootFS.DiffIDs {
			if checkDigest(h) != nil {
				t.Fatalf("accepted diff_id %q", h)
			}
		}
	})
}
