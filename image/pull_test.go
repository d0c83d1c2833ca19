package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/image/unpack"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarBytes(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(1700000000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func gzLayer(t *testing.T, tb []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func zstdLayer(t *testing.T, tb []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func rawLayer(tb []byte) v1.Layer { return static.NewLayer(tb, types.OCIUncompressedLayer) }

func mkImage(t *testing.T, plat v1.Platform, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type testReg struct {
	srv   *httptest.Server
	host  string
	blobs atomic.Int32 // blob GETs served
}

func newRegistry(t *testing.T, corrupt func(r *http.Request) bool) *testReg {
	t.Helper()
	tr := &testReg{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			tr.blobs.Add(1)
			if corrupt != nil && corrupt(r) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				if len(body) > 0 {
					body[len(body)/2] ^= 0xff
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(body)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

func (tr *testReg) push(t *testing.T, repoTag string, img v1.Image) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(tr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// localUnpacker unpacks in this process, as the test user: ownership is
// not exercised here (the integration tests do that in the namespace).
func localUnpacker(st *store.Store) Unpacker {
	return func(ctx context.Context, jobs []store.UnpackJob, data io.Reader, lim limits.Limits) error {
		_, err := st.UnpackStream(jobs, data, unpack.Options{IgnoreChownErrors: true}, lim)
		return err
	}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

func TestPullFormatsAndUnpack(t *testing.T) {
	reg := newRegistry(t, nil)
	base := tarBytes(t, entry{name: "etc/", typ: tar.TypeDir}, entry{name: "etc/os-release", body: "ID=test\n"},
		entry{name: "etc/gone", body: "x"}, entry{name: "bin/", typ: tar.TypeDir}, entry{name: "bin/sh", body: "#!", mode: 0o755})
	upper := tarBytes(t, entry{name: "etc/.wh.gone"}, entry{name: "etc/new", body: "new"})
	third := tarBytes(t, entry{name: "opt/", typ: tar.TypeDir}, entry{name: "opt/raw", body: "raw"})
	docker := mkImage(t, amd64, gzLayer(t, base), gzLayer(t, upper))
	oci := mutate.MediaType(mkImage(t, amd64, gzLayer(t, base), zstdLayer(t, upper), rawLayer(third)), types.OCIManifestSchema1)
	oci = mutate.ConfigMediaType(oci, types.OCIConfigJSON)
	cases := []struct {
		name string
		img  v1.Image
		want []string
	}{
		{"docker schema2 gzip", docker, []string{"etc/os-release", "etc/new"}},
		{"oci gzip zstd uncompressed", oci, []string{"etc/os-release", "etc/new", "opt/raw"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := reg.push(t, "test/"+strings.ReplaceAll(c.name, " ", "-")+":1", c.img)
			st := openStore(t)
			res, err := Pull(context.Background(), st, ref, Options{Platform: &amd64, Unpack: localUnpacker(st)})
			if err != nil {
				t.Fatal(err)
			}
			wantDigest, _ := c.img.Digest()
			if res.Digest != wantDigest {
				t.Errorf("digest %s, want %s", res.Digest, wantDigest)
			}
			imgs, _ := st.Images()
			if len(imgs) != 1 || imgs[0].Ref != FullName(ref) || imgs[0].Digest != wantDigest.String() {
				t.Fatalf("images = %+v", imgs)
			}
			// Stored manifests are OCI, whatever the registry served.
			im, _ := st.Index()
			if im.Manifests[0].MediaType != types.OCIManifestSchema1 {
				t.Errorf("stored media type %s", im.Manifests[0].MediaType)
			}
			m, err := st.Manifest(im.Manifests[0].Digest)
			if err != nil || m.Config.MediaType != types.OCIConfigJSON {
				t.Fatalf("stored manifest %+v %v", m, err)
			}
			if len(res.Chains) != len(m.Layers) {
				t.Fatalf("chains %d layers %d", len(res.Chains), len(m.Layers))
			}
			found := map[string]bool{}
			for _, ch := range res.Chains {
				for _, w := range c.want {
					if _, err := os.Lstat(filepath.Join(st.LayerDir(ch), w)); err == nil {
						found[w] = true
					}
				}
			}
			for _, w := range c.want {
				if !found[w] {
					t.Errorf("%s not unpacked", w)
				}
			}
			// The whiteout of etc/gone is an overlay whiteout in layer 2.
			fi, err := os.Lstat(filepath.Join(st.LayerDir(res.Chains[1]), "etc/gone"))
			if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
				t.Errorf("whiteout not converted: %v %v", fi, err)
			}
		})
	}
}

func TestPullSkipsStoredBlobsAndIsConcurrentSafe(t *testing.T) {
	reg := newRegistry(t, nil)
	img := mkImage(t, amd64, gzLayer(t, tarBytes(t, entry{name: "a", body: strings.Repeat("a", 100000)})),
		gzLayer(t, tarBytes(t, entry{name: "b", body: "b"})))
	ref := reg.push(t, "test/conc:1", img)
	st := openStore(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st2, _ := store.Open(st.Root) // as separate processes would
			_, errs[i] = Pull(context.Background(), st2, ref, Options{Platform: &amd64, Unpack: localUnpacker(st2)})
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	imgs, _ := st.Images()
	if len(imgs) != 1 {
		t.Fatalf("%d index entries, want 1", len(imgs))
	}
	before := reg.blobs.Load()
	res, err := Pull(context.Background(), st, ref, Options{Platform: &amd64, Unpack: localUnpacker(st)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Downloaded != 0 || res.Unpacked != 0 {
		t.Errorf("second pull downloaded %d, unpacked %d; want 0, 0", res.Downloaded, res.Unpacked)
	}
	if got := reg.blobs.Load() - before; got > 1 { // the config may be fetched again
		t.Errorf("second pull fetched %d blobs", got)
	}
	if ents, _ := os.ReadDir(st.TmpDir()); len(ents) != 0 {
		t.Errorf("tmp not empty: %v", ents)
	}
}

func TestPullPlatforms(t *testing.T) {
	reg := newRegistry(t, nil)
	arm := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	mk := func(p v1.Platform) v1.Image {
		return mkImage(t, p, gzLayer(t, tarBytes(t, entry{name: "arch", body: PlatformString(p)})))
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: mk(amd64), Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: mk(arm), Descriptor: v1.Descriptor{Platform: &arm}},
	)
	ref, _ := name.ParseReference(reg.host + "/test/multi:1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	cases := []struct {
		plat    v1.Platform
		want    string
		wantErr string
	}{
		{amd64, "linux/amd64", ""},
		{v1.Platform{OS: "linux", Architecture: "arm64"}, "linux/arm64/v8", ""},
		{v1.Platform{OS: "linux", Architecture: "s390x"}, "", "offers linux/amd64, linux/arm64/v8"},
	}
	for _, c := range cases {
		st := openStore(t)
		p := c.plat
		res, err := Pull(context.Background(), st, ref, Options{Platform: &p, Unpack: localUnpacker(st)})
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "--platform") {
				t.Errorf("%s: err = %v, want %q", PlatformString(p), err, c.wantErr)
			}
			if imgs, _ := st.Images(); len(imgs) != 0 {
				t.Errorf("failed pull left an index entry")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(st.LayerDir(res.Chains[0]), "arch"))
		if string(b) != c.want || res.SourceDigest != idxDigest {
			t.Errorf("%s: got %q (source %s), want %q", PlatformString(p), b, res.SourceDigest, c.want)
		}
		// Pulling by the index digest works too.
		if _, err := Pull(context.Background(), st, ref.Context().Digest(idxDigest.String()), Options{Platform: &p}); err != nil {
			t.Errorf("by digest: %v", err)
		}
	}
}

func TestPullMirrors(t *testing.T) {
	origin := newRegistry(t, nil)
	mirror := newRegistry(t, nil)
	empty2 := newRegistry(t, nil)
	img := mkImage(t, amd64, gzLayer(t, tarBytes(t, entry{name: "f", body: "x"})))
	originRef := origin.push(t, "library/thing:1", img)
	mirror.push(t, "library/thing:1", img)
	cases := []struct {
		name    string
		mirrors []string
		from    string
	}{
		{"mirror first", []string{mirror.host}, mirror.host},
		{"empty mirror falls back to the origin", []string{empty2.host}, origin.host},
		{"down mirror falls back", []string{"127.0.0.1:1", mirror.host}, mirror.host},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			regs := Registries{Mirrors: map[string][]string{origin.host: c.mirrors}}
			res, err := Pull(context.Background(), st, originRef, Options{Platform: &amd64, Registries: regs})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(res.From, c.from+"/") || res.Ref != FullName(originRef) {
				t.Errorf("from %s (ref %s), want %s", res.From, res.Ref, c.from)
			}
		})
	}
	// docker.io names resolve to a configured mirror without touching Docker Hub.
	mirror.push(t, "library/debian:13", img)
	tab := alias.New(nil)
	ref, _, err := Resolve("debian", tab)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	res, err := Pull(context.Background(), st, ref, Options{Platform: &amd64, Registries: Registries{Mirrors: map[string][]string{"docker.io": {mirror.host}}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != "docker.io/library/debian:13" || !strings.HasPrefix(res.From, mirror.host) {
		t.Errorf("got %s from %s", res.Ref, res.From)
	}
}

func TestPullCorruptBlobLeavesNothing(t *testing.T) {
	img := mkImage(t, amd64, gzLayer(t, tarBytes(t, entry{name: "big", body: strings.Repeat("z", 50000)})))
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	reg := newRegistry(t, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, ld.String()) })
	ref := reg.push(t, "test/corrupt:1", img)
	st := openStore(t)
	_, err := Pull(context.Background(), st, ref, Options{Platform: &amd64, Unpack: localUnpacker(st)})
	if err == nil {
		t.Fatal("pull of a corrupted blob succeeded")
	}
	if st.HasBlob(ld, -1) {
		t.Error("corrupted blob is visible in the store")
	}
	if imgs, _ := st.Images(); len(imgs) != 0 {
		t.Error("index entry written")
	}
	if ents, _ := os.ReadDir(st.TmpDir()); len(ents) != 0 {
		t.Errorf("tmp debris: %v", ents)
	}
}

func TestPullHostileLayerLeavesStoreClean(t *testing.T) {
	reg := newRegistry(t, nil)
	cases := []struct {
		name    string
		entries []entry
	}{
		{"dotdot", []entry{{name: "../escape", body: "x"}}},
		{"symlink then write", []entry{{name: "l", typ: tar.TypeSymlink, link: "/tmp"}, {name: "l/pwned", body: "x"}}},
		{"hardlink outside", []entry{{name: "h", typ: tar.TypeLink, link: "../../../etc/passwd"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := mkImage(t, amd64, gzLayer(t, tarBytes(t, entry{name: "ok", body: "fine"})), gzLayer(t, tarBytes(t, c.entries...)))
			ref := reg.push(t, "test/hostile-"+strings.ReplaceAll(c.name, " ", "-")+":1", img)
			st := openStore(t)
			_, err := Pull(context.Background(), st, ref, Options{Platform: &amd64, Unpack: localUnpacker(st)})
			if err == nil || !errors.Is(err, unpack.ErrUnsafePath) {
				t.Fatalf("err = %v, want ErrUnsafePath", err)
			}
			if imgs, _ := st.Images(); len(imgs) != 0 {
				t.Error("index entry written for a hostile image")
			}
			if ents, _ := os.ReadDir(st.TmpDir()); len(ents) != 0 {
				t.Errorf("tmp debris: %v", ents)
			}
			cf, _ := img.ConfigFile()
			chains := store.ChainIDs(cf.RootFS.DiffIDs)
			if st.HasLayer(chains[1]) {
				t.Error("hostile layer kept")
			}
			if _, err := os.Lstat("/tmp/pwned"); err == nil {
				t.Error("/tmp/pwned written outside the store")
			}
		})
	}
}

func TestPullErrors(t *testing.T) {
	reg := newRegistry(t, nil)
	st := openStore(t)
	ref, _ := name.ParseReference(reg.host + "/nope/missing:1")
	_, err := Pull(context.Background(), st, ref, Options{Platform: &amd64})
	if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "hint:") {
		t.Errorf("missing image: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	img := mkImage(t, amd64, gzLayer(t, tarBytes(t, entry{name: "f", body: "x"})))
	ref = reg.push(t, "test/cancel:1", img)
	if _, err := Pull(ctx, st, ref, Options{Platform: &amd64}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pull: %v", err)
	}
}

func TestResolve(t *testing.T) {
	tab := alias.New(map[string]string{"mine": "example.com/me/box:2"})
	cases := []struct{ in, want, err string }{
		{"ubuntu", "docker.io/library/ubuntu:24.04", ""},
		{"centos", "quay.io/centos/centos:stream10", ""},
		{"mine", "example.com/me/box:2", ""},
		{"alpine:3.20", "docker.io/library/alpine:3.20", ""},
		{"nginx", "docker.io/library/nginx:latest", ""},
		{"quay.io/a/b", "quay.io/a/b:latest", ""},
		{"ghcr.io/a/b@sha256:" + strings.Repeat("a", 64), "ghcr.io/a/b@sha256:" + strings.Repeat("a", 64), ""},
		{"https://quay.io/a/b", "", "without a scheme"},
		{"Fedroa:", "", "did you mean the alias \"fedora\""},
	}
	for _, c := range cases {
		ref, _, err := Resolve(c.in, tab)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Resolve(%q) err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || FullName(ref) != c.want {
			t.Errorf("Resolve(%q) = %v, %v; want %s", c.in, ref, err, c.want)
		}
	}
}
