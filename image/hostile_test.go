package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// docRegistry is an in-process registry whose manifests can be replaced by
// any bytes with any Content-Type, or by a handler of their own.
type docRegistry struct {
	host string
	mu   sync.Mutex
	docs map[string]http.HandlerFunc // URL path -> handler
}

func newDocRegistry(t *testing.T) *docRegistry {
	t.Helper()
	dr := &docRegistry{docs: map[string]http.HandlerFunc{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dr.mu.Lock()
		f := dr.docs[r.URL.Path]
		dr.mu.Unlock()
		if f != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			f(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dr.host = strings.TrimPrefix(srv.URL, "http://")
	return dr
}

// serve makes repo's manifest by ident (a tag or digest) answer body as ct.
func (dr *docRegistry) serve(repo, ident, ct string, body []byte) {
	dr.handle(repo, ident, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		h, _, _ := v1.SHA256(bytes.NewReader(body))
		w.Header().Set("Docker-Content-Digest", h.String())
		w.Write(body)
	})
}

func (dr *docRegistry) handle(repo, ident string, f http.HandlerFunc) {
	dr.mu.Lock()
	dr.docs["/v2/"+repo+"/manifests/"+ident] = f
	dr.mu.Unlock()
}

func (dr *docRegistry) ref(t *testing.T, repoTag string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(dr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (dr *docRegistry) push(t *testing.T, repoTag string, img v1.Image) name.Reference {
	t.Helper()
	r := dr.ref(t, repoTag)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return r
}

// pushBlob stores b as a blob of repo.
func (dr *docRegistry) pushBlob(t *testing.T, repo string, b []byte) v1.Hash {
	t.Helper()
	l := static.NewLayer(b, types.OCIConfigJSON)
	repoRef, _ := name.NewRepository(dr.host + "/" + repo)
	if err := remote.WriteLayer(repoRef, l); err != nil {
		t.Fatal(err)
	}
	h, _ := l.Digest()
	return h
}

// jsonDoc is a document edited as a map.
type jsonDoc map[string]any

func docOf(t *testing.T, b []byte) jsonDoc {
	t.Helper()
	var d jsonDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d jsonDoc) bytes(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (d jsonDoc) with(kv ...any) jsonDoc {
	o := jsonDoc{}
	for k, v := range d {
		o[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(o, kv[i].(string))
		} else {
			o[kv[i].(string)] = kv[i+1]
		}
	}
	return o
}

// storeFiles lists the store's files and directories with their sizes,
// all but the lock files (empty files that only carry flocks).
func storeFiles(t *testing.T, st *store.Store) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(st.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(st.Root, p)
		if rel == "locks" {
			return fs.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[rel] = fi.Size()
		if d.IsDir() {
			out[rel] = -1
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// storeDiff describes what differs between two storeFiles lists.
func storeDiff(before, after map[string]int64) []string {
	var d []string
	for p, n := range after {
		if m, ok := before[p]; !ok {
			d = append(d, "new "+p)
		} else if m != n {
			d = append(d, "changed "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			d = append(d, "gone "+p)
		}
	}
	sort.Strings(d)
	return d
}

// hostileImage is a valid two-layer image and its parts.
type hostileImage struct {
	img      v1.Image
	manifest jsonDoc
	config   jsonDoc
	rawCfg   []byte
}

func newHostileImage(t *testing.T) hostileImage {
	t.Helper()
	img := mkImage(t, amd64, gzLayer(t, tarBytes(t, entry{name: "a", body: "a"})), gzLayer(t, tarBytes(t, entry{name: "b", body: "b"})))
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return hostileImage{img: img, manifest: docOf(t, raw), config: docOf(t, cfg), rawCfg: cfg}
}

const (
	ociManifest = string(types.OCIManifestSchema1)
	ociIndex    = string(types.OCIImageIndex)
)

// TestPullHostileDocuments serves hostile manifests, indexes and configs:
// each is refused with a one-line error that says what is wrong, before
// anything is written to the store.
func TestPullHostileDocuments(t *testing.T) {
	reg := newDocRegistry(t)
	hi := newHostileImage(t)
	base := reg.push(t, "hostile/base:1", hi.img)
	repo := base.Context().RepositoryStr()
	mdigest, _ := hi.img.Digest()
	msize, _ := hi.img.Size()
	index := jsonDoc{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []any{
		map[string]any{"mediaType": ociManifest, "digest": mdigest.String(), "size": msize, "platform": map[string]any{"os": "linux", "architecture": "amd64"}},
	}}
	layers := hi.manifest["layers"].([]any)
	layer0 := layers[0].(map[string]any)
	withLayer := func(field string, v any) jsonDoc {
		l := map[string]any{}
		for k, x := range layer0 {
			l[k] = x
		}
		l[field] = v
		return hi.manifest.with("layers", []any{l, layers[1]})
	}
	withConfig := func(field string, v any) jsonDoc {
		c := map[string]any{}
		for k, x := range hi.manifest["config"].(map[string]any) {
			c[k] = x
		}
		c[field] = v
		return hi.manifest.with("config", c)
	}
	// A config whose diff_ids name another algorithm.
	cfgSHA512 := hi.config.with("rootfs", map[string]any{"type": "layers", "diff_ids": []string{
		"sha512:" + strings.Repeat("ab", 64), "sha256:" + strings.Repeat("cd", 32)}})
	cfgSHA512Bytes := cfgSHA512.bytes(t)
	cfgSHA512Digest := reg.pushBlob(t, repo, cfgSHA512Bytes)
	bigAnnotation := strings.Repeat("x", limits.DefaultDocumentSize)

	cases := []struct {
		name string
		ct   string
		body []byte
		lim  limits.Limits
		want string
	}{
		{"index served as manifest", ociManifest, index.bytes(t), limits.Limits{}, "is served as " + ociManifest + " but says it is " + ociIndex},
		{"index without mediaType served as manifest", ociManifest, index.with("mediaType", nil).bytes(t), limits.Limits{}, "with the field of an index (manifests)"},
		{"manifest with manifests", ociManifest, hi.manifest.with("manifests", []any{}).bytes(t), limits.Limits{}, "with the field of an index (manifests)"},
		{"index with config and layers", ociIndex, index.with("config", hi.manifest["config"], "layers", layers).bytes(t), limits.Limits{}, "with the fields of an image manifest"},
		{"manifest served as index", ociIndex, hi.manifest.bytes(t), limits.Limits{}, "is served as " + ociIndex + " but says it is " + ociManifest},
		{"docker list served as oci index", ociIndex, index.with("mediaType", string(types.DockerManifestList)).bytes(t), limits.Limits{}, "but says it is"},
		{"no media type at all", "application/json", hi.manifest.with("mediaType", nil).bytes(t), limits.Limits{}, "has no media type"},
		{"empty mediaType", ociManifest, hi.manifest.with("mediaType", "").bytes(t), limits.Limits{}, "empty mediaType"},
		{"unknown media type", "application/vnd.example.thing+json", hi.manifest.with("mediaType", nil).bytes(t), limits.Limits{}, "unsupported media type"},
		{"schema 1", string(types.DockerManifestSchema1Signed), []byte(`{"schemaVersion":1,"fsLayers":[]}`), limits.Limits{}, "schema 1"},
		{"schema 1 fields in schema 2", ociManifest, hi.manifest.with("fsLayers", []any{}).bytes(t), limits.Limits{}, "schema 1"},
		{"schemaVersion 3", ociManifest, hi.manifest.with("schemaVersion", 3).bytes(t), limits.Limits{}, "schemaVersion is not 2"},
		{"manifest without config", ociManifest, hi.manifest.with("config", nil).bytes(t), limits.Limits{}, "without a config"},
		{"index without manifests", ociIndex, index.with("manifests", nil).bytes(t), limits.Limits{}, "without manifests"},
		{"repeated mediaType", ociManifest, []byte(`{"mediaType":"` + ociIndex + `",` + string(hi.manifest.bytes(t)[1:])), limits.Limits{}, `has the key "mediaType" twice`},
		{"case-variant Manifests", ociManifest, hi.manifest.with("Manifests", []any{}).bytes(t), limits.Limits{}, `has the key "Manifests", not "manifests"`},
		{"case-variant MediaType", ociManifest, hi.manifest.with("mediaType", nil, "MediaType", ociManifest).bytes(t), limits.Limits{}, `has the key "MediaType", not "mediaType"`},
		{"not JSON", ociManifest, []byte("\x00\x01garbage"), limits.Limits{}, "not a JSON document"},
		{"JSON array", ociManifest, []byte("[1,2]"), limits.Limits{}, "not a JSON document"},
		{"unknown digest algorithm", ociManifest, withLayer("digest", "md5:"+strings.Repeat("a", 32)).bytes(t), limits.Limits{}, "md5"},
		{"path in digest algorithm", ociManifest, withLayer("digest", "../../../../tmp:"+strings.Repeat("a", 64)).bytes(t), limits.Limits{}, "manifest"},
		{"short hex", ociManifest, withConfig("digest", "sha256:abcd").bytes(t), limits.Limits{}, "hex"},
		{"long hex", ociManifest, withLayer("digest", "sha256:"+strings.Repeat("a", 66)).bytes(t), limits.Limits{}, "hex"},
		{"upper-case hex", ociManifest, withLayer("digest", "sha256:"+strings.Repeat("A", 64)).bytes(t), limits.Limits{}, "hex"},
		{"sha512 layer", ociManifest, withLayer("digest", "sha512:"+strings.Repeat("a", 128)).bytes(t), limits.Limits{}, "sha512 algorithm is not supported"},
		{"sha512 diff_id", ociManifest, hi.manifest.with("config", map[string]any{"mediaType": string(types.OCIConfigJSON), "digest": cfgSHA512Digest.String(), "size": len(cfgSHA512Bytes)}).bytes(t), limits.Limits{}, "rootfs.diff_ids[0]: digest \"sha512:abab"},
		{"embedded config data", ociManifest, withConfig("data", "aGVsbG8=").bytes(t), limits.Limits{}, "the data embedded in the manifest does not match its digest or size"},
		{"negative layer size", ociManifest, withLayer("size", -5).bytes(t), limits.Limits{}, "negative size"},
		{"manifest too large", ociManifest, hi.manifest.with("annotations", map[string]string{"x": bigAnnotation}).bytes(t), limits.Limits{}, "is larger than 4 MiB, the limit set by max_document_size (hint: if you trust the image, raise max_document_size under [limits] in"},
		{"config too large", ociManifest, withConfig("size", limits.DefaultDocumentSize+1).bytes(t), limits.Limits{}, "the image config of " + reg.host + "/hostile/doc-config-too-large:1 is larger than 4 MiB, the limit set by max_document_size"},
		{"too many layers", ociManifest, hi.manifest.bytes(t), limits.Limits{Layers: 1}, "has 2 layers, more than 1 layers, the limit set by max_layers"},
		{"layer larger than the layer limit", ociManifest, withLayer("size", 2<<20).bytes(t), limits.Limits{LayerSize: 1 << 20}, "is larger than 1 MiB, the limit set by max_layer_size"},
		{"layers larger than the image limit", ociManifest, withLayer("size", 1<<30).bytes(t), limits.Limits{ImageSize: 1 << 30}, "are larger than 1 GiB, the limit set by max_image_size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tag := "hostile/doc-" + strings.ToLower(strings.ReplaceAll(c.name, " ", "-")) + ":1"
			tag = strings.ReplaceAll(tag, "_", "-")
			r := reg.ref(t, tag)
			// The blobs are in the repository; only the manifest is hostile.
			if err := remote.Write(r, hi.img); err != nil {
				t.Fatal(err)
			}
			if c.name == "sha512 diff_id" {
				reg.pushBlob(t, r.Context().RepositoryStr(), cfgSHA512Bytes)
			}
			reg.serve(r.Context().RepositoryStr(), "1", c.ct, c.body)
			st := openStore(t)
			before := storeFiles(t, st)
			_, err := Pull(context.Background(), st, r, Options{Platform: &amd64, Unpack: localUnpacker(st), Limits: c.lim})
			if err == nil {
				t.Fatal("pull succeeded")
			}
			checkUserError(t, c.want, err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, c.want)
			}
			if d := storeDiff(before, storeFiles(t, st)); len(d) > 0 {
				t.Errorf("the store changed:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestPullDocumentAnswers: what the strict decoder must still accept, and
// registries that answer without end.
func TestPullDocumentAnswers(t *testing.T) {
	reg := newDocRegistry(t)
	hi := newHostileImage(t)

	t.Run("media type parameters", func(t *testing.T) {
		r := reg.push(t, "ok/params:1", hi.img)
		reg.serve(r.Context().RepositoryStr(), "1", ociManifest+"; charset=utf-8", hi.manifest.bytes(t))
		st := openStore(t)
		if _, err := Pull(context.Background(), st, r, Options{Platform: &amd64, Unpack: localUnpacker(st)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("generic content type and own media type", func(t *testing.T) {
		r := reg.push(t, "ok/generic:1", hi.img)
		reg.serve(r.Context().RepositoryStr(), "1", "application/json", hi.manifest.bytes(t))
		st := openStore(t)
		if _, err := Pull(context.Background(), st, r, Options{Platform: &amd64, Unpack: localUnpacker(st)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("endless manifest", func(t *testing.T) {
		r := reg.push(t, "hostile/endless:1", hi.img)
		reg.handle(r.Context().RepositoryStr(), "1", func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Content-Type", ociManifest)
			chunk := bytes.Repeat([]byte(" "), 1<<20)
			for i := 0; i < 1<<14; i++ { // 16 GiB, if nobody stops reading
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		st := openStore(t)
		before := storeFiles(t, st)
		var ms runtime.MemStats
		start := time.Now()
		_, err := Pull(context.Background(), st, r, Options{Platform: &amd64, Unpack: localUnpacker(st)})
		runtime.ReadMemStats(&ms)
		var le *limits.Error
		if !errors.As(err, &le) || le.Key != limits.KeyDocumentSize {
			t.Fatalf("err = %v, want the max_document_size limit", err)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("took %v", el)
		}
		if d := storeDiff(before, storeFiles(t, st)); len(d) > 0 {
			t.Errorf("the store changed:\n%s", strings.Join(d, "\n"))
		}
		t.Logf("err: %v; heap in use %d MiB", err, ms.HeapInuse>>20)
	})
	t.Run("index of many platforms", func(t *testing.T) {
		r := reg.push(t, "hostile/platforms:1", hi.img)
		var ms []any
		for i := 0; i < 3000; i++ {
			ms = append(ms, map[string]any{"mediaType": ociManifest, "digest": "sha256:" + strings.Repeat("e", 64), "size": 1,
				"platform": map[string]any{"os": "linux", "architecture": []string{"s390x", "ppc64le", "riscv64"}[i%3] + strings.Repeat("x", i%20)}})
		}
		reg.serve(r.Context().RepositoryStr(), "1", ociIndex, jsonDoc{"schemaVersion": 2, "mediaType": ociIndex, "manifests": ms}.bytes(t))
		_, err := Pull(context.Background(), openStore(t), r, Options{Platform: &amd64})
		if err == nil || !strings.Contains(err.Error(), "it offers linux/s390x, linux/ppc64lex, ") || !strings.Contains(err.Error(), ", and 48 more (hint: pick one with --platform)") {
			t.Fatalf("err = %v", err)
		}
		if len(err.Error()) > 600 {
			t.Errorf("error of %d bytes", len(err.Error()))
		}
	})
	t.Run("manifest with a huge Content-Length", func(t *testing.T) {
		r := reg.push(t, "hostile/length:1", hi.img)
		reg.handle(r.Context().RepositoryStr(), "1", func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Content-Type", ociManifest)
			w.Header().Set("Content-Length", "10000000000")
			w.Write(hi.manifest.bytes(t))
		})
		st := openStore(t)
		_, err := Pull(context.Background(), st, r, Options{Platform: &amd64})
		var le *limits.Error
		if !errors.As(err, &le) || le.Key != limits.KeyDocumentSize {
			t.Fatalf("err = %v, want the max_document_size limit", err)
		}
	})
}

// TestPullIndexDepth: nested indexes are followed down to max_index_depth
// levels, and an entry's media type must be the child's.
func TestPullIndexDepth(t *testing.T) {
	reg := newDocRegistry(t)
	hi := newHostileImage(t)
	r := reg.push(t, "nest/img:1", hi.img)
	repo := r.Context().RepositoryStr()
	mdigest, _ := hi.img.Digest()
	msize, _ := hi.img.Size()
	entry := map[string]any{"mediaType": ociManifest, "digest": mdigest.String(), "size": msize}
	// wrap returns an index of one entry naming doc, and serves doc by
	// its digest.
	wrap := func(child map[string]any, childCT string, childBody []byte) (map[string]any, []byte) {
		h := sha(childBody)
		reg.serve(repo, h.String(), childCT, childBody)
		idx := jsonDoc{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []any{child}}.bytes(t)
		return map[string]any{"mediaType": ociIndex, "digest": sha(idx).String(), "size": len(idx)}, idx
	}
	manifest, _ := hi.img.RawManifest()
	e1, idx1 := wrap(entry, ociManifest, manifest) // index -> manifest
	e2, idx2 := wrap(e1, ociIndex, idx1)           // index -> index -> manifest
	_, idx3 := wrap(e2, ociIndex, idx2)            // 3 levels
	lying := map[string]any{"mediaType": ociIndex, "digest": mdigest.String(), "size": msize}
	_, idxLying := wrap(lying, ociManifest, manifest)

	for _, c := range []struct {
		name string
		body []byte
		lim  limits.Limits
		want string // "" = success
	}{
		{"one level", idx1, limits.Limits{}, ""},
		{"two levels", idx2, limits.Limits{}, ""},
		{"three levels", idx3, limits.Limits{}, "nests deeper than 2 level(s), the limit set by max_index_depth"},
		{"three levels allowed", idx3, limits.Limits{IndexDepth: 3}, ""},
		{"two levels with depth 1", idx2, limits.Limits{IndexDepth: 1}, "max_index_depth"},
		{"entry says index, child is manifest", idxLying, limits.Limits{}, "is " + ociManifest + " but its index says " + ociIndex},
	} {
		t.Run(c.name, func(t *testing.T) {
			tag := strings.ReplaceAll(c.name, " ", "-")
			tag = strings.ReplaceAll(tag, ",", "")
			reg.serve(repo, tag, ociIndex, c.body)
			st := openStore(t)
			before := storeFiles(t, st)
			res, err := Pull(context.Background(), st, reg.ref(t, repo+":"+tag), Options{Platform: &amd64, Unpack: localUnpacker(st), Limits: c.lim})
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Digest != mdigest {
					t.Errorf("digest %s, want %s", res.Digest, mdigest)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			checkUserError(t, c.want, err)
			if d := storeDiff(before, storeFiles(t, st)); len(d) > 0 {
				t.Errorf("the store changed:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// gzBytes compresses b.
func gzBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// rawImage is an image with layers given as blobs (compressed or not) and
// the diff_ids the config claims for them.
func rawImage(t *testing.T, blobs [][]byte, diffIDs []v1.Hash) v1.Image {
	t.Helper()
	img := mkImage(t, amd64)
	for _, b := range blobs {
		mt := types.OCILayer
		if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			mt = types.OCIUncompressedLayer
		}
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(b, mt)})
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs = diffIDs
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func sha(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

// zeroTar is a tar of one file of n zero bytes, streamed.
func zeroTar(t *testing.T, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: n})
	chunk := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(chunk)) {
		tw.Write(chunk[:min(left, int64(len(chunk)))])
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestPullHostileLayers: layers refused while they unpack (bombs, sizes,
// bytes after the tar's end), each with the limit's key; nothing of them is
// kept as a layer or image.
func TestPullHostileLayers(t *testing.T) {
	reg := newRegistry(t, nil)
	abc := tarBytes(t, entry{name: "f", body: strings.Repeat("abc", 1<<20)}) // 3 MiB, compresses well
	abc2 := tarBytes(t, entry{name: "g", body: strings.Repeat("xyz", 1<<20)})
	small := tarBytes(t, entry{name: "s", body: "small"})
	trailing := append(append([]byte{}, small...), []byte("hidden bytes after the end of the archive")...)
	zeros := zeroTar(t, 100<<20)
	// The uncompressed digest of the zero tar, without keeping 200 MiB.
	zr, _ := gzip.NewReader(bytes.NewReader(zeros))
	zdiff, _, _ := v1.SHA256(zr)

	for _, c := range []struct {
		name    string
		blobs   [][]byte
		diffIDs []v1.Hash
		lim     limits.Limits
		want    string
	}{
		{"gzip bomb", [][]byte{zeros}, []v1.Hash{zdiff}, limits.Limits{}, "times its compressed size, the limit set by max_compression_ratio"},
		{"layer over max_layer_size", [][]byte{gzBytes(t, abc)}, []v1.Hash{sha(abc)}, limits.Limits{LayerSize: 2 << 20}, "unpacks to more than 2 MiB, the limit set by max_layer_size"},
		{"image over max_image_size", [][]byte{gzBytes(t, abc), gzBytes(t, abc2)}, []v1.Hash{sha(abc), sha(abc2)}, limits.Limits{ImageSize: 5 << 20}, "the image unpacks to more than 5 MiB, the limit set by max_image_size"},
		{"bytes after the end of the archive", [][]byte{gzBytes(t, trailing)}, []v1.Hash{sha(small)}, limits.Limits{}, "does not match the image config's diff_id"},
		{"uncompressed bytes after the end", [][]byte{trailing}, []v1.Hash{sha(small)}, limits.Limits{}, "does not match the image config's diff_id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := rawImage(t, c.blobs, c.diffIDs)
			ref := reg.push(t, "hostile/layer-"+strings.ReplaceAll(c.name, " ", "-")+":1", img)
			st := openStore(t)
			start := time.Now()
			_, err := Pull(context.Background(), st, ref, Options{Platform: &amd64, Unpack: localUnpacker(st), Limits: c.lim})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %q", err, c.want)
			}
			checkUserError(t, c.want, err)
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("refused after %v", el)
			}
			if imgs, _ := st.Images(); len(imgs) != 0 {
				t.Error("index entry written")
			}
			// The refused layer is not kept (the layers below it are
			// valid; the failed pull's clean-up takes them back).
			chains := store.ChainIDs(c.diffIDs)
			if st.HasLayer(chains[len(chains)-1]) {
				t.Error("the refused layer is kept")
			}
			if ents, _ := os.ReadDir(st.TmpDir()); len(ents) != 0 {
				t.Errorf("tmp debris: %v", ents)
			}
		})
	}
	// The same layers within raised limits unpack.
	t.Run("raised limits", func(t *testing.T) {
		img := rawImage(t, [][]byte{gzBytes(t, abc), gzBytes(t, abc2)}, []v1.Hash{sha(abc), sha(abc2)})
		ref := reg.push(t, "ok/raised:1", img)
		st := openStore(t)
		if _, err := Pull(context.Background(), st, ref, Options{Platform: &amd64, Unpack: localUnpacker(st), Limits: limits.Limits{LayerSize: 4 << 20, ImageSize: 7 << 20}}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPullRedirectedBlobs: blob content is not bounded by
// max_document_size, also when the registry redirects it elsewhere (as
// Docker Hub does to its CDN); a redirected manifest is.
func TestPullRedirectedBlobs(t *testing.T) {
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/cdn/"): // the original path, its slashes as '!'
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.ReplaceAll(strings.TrimPrefix(r.URL.Path, "/cdn/"), "!", "/")
			h.ServeHTTP(w, r2)
		case r.Method == http.MethodGet && (strings.Contains(r.URL.Path, "/blobs/sha256:") || strings.Contains(r.URL.Path, "/manifests/big")):
			http.Redirect(w, r, "/cdn/"+strings.ReplaceAll(r.URL.Path, "/", "!"), http.StatusTemporaryRedirect)
		default:
			h.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	// 6 MiB that gzip cannot shrink below 4 MiB.
	body := make([]byte, 6<<20)
	rand.New(rand.NewSource(1)).Read(body)
	img := mkImage(t, amd64, gzLayer(t, tarBytes(t, entry{name: "big", body: string(body)})))
	ls, _ := img.Layers()
	if n, _ := ls[0].Size(); n <= limits.DefaultDocumentSize {
		t.Fatalf("layer of %d bytes: not over the document limit", n)
	}
	ref, _ := name.ParseReference(host + "/redirect/img:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	if _, err := Pull(context.Background(), st, ref, Options{Platform: &amd64, Unpack: localUnpacker(st)}); err != nil {
		t.Fatalf("redirected blobs: %v", err)
	}
	// A redirected manifest is still a document.
	big, _ := name.ParseReference(host + "/redirect/img:big")
	raw, _ := img.RawManifest()
	padded := append(bytes.TrimSuffix(raw, []byte("}")), []byte(`,"annotations":{"x":"`+strings.Repeat("y", limits.DefaultDocumentSize)+`"}}`)...)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/redirect/img/manifests/big", bytes.NewReader(padded))
	req.Header.Set("Content-Type", ociManifest)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("putting the big manifest: %v %v", resp, err)
	}
	_, err := Pull(context.Background(), openStore(t), big, Options{Platform: &amd64})
	var le *limits.Error
	if !errors.As(err, &le) || le.Key != limits.KeyDocumentSize {
		t.Fatalf("redirected big manifest: %v", err)
	}
}
