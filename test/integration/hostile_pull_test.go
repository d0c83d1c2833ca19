//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// This file pushes hostile images to the real registry (and serves what a
// registry would refuse to store through a hostile proxy in front of it)
// and pulls them with the real devbox: each is refused with exit 125 and
// one line naming the limit or the fault, leaves the store as it was, and
// no pull, whatever it is served, grows past 100 MB of memory.

type hEntry struct {
	name, body string
	typ        byte
	mode       int64
	uid, gid   int
	xattrs     map[string]string
}

func hostileTar(t *testing.T, ents ...hEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// pushLayers pushes an image of the given uncompressed tars (gzipped) with
// the given diff_ids (nil: the tars' own) to ref on the real registry.
func pushBlobLayers(t *testing.T, ref string, blobs [][]byte, diffIDs []v1.Hash) v1.Image {
	t.Helper()
	img := empty.Image
	for _, b := range blobs {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(b, types.OCILayer)})
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.RootFS.DiffIDs = diffIDs
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return img
}

func shaOf(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

// zeroLayer is a gzipped tar of one file of n zero bytes (a multiple of
// 1 MiB), and its diff_id. The gzip stream is a series of members, the one
// of 1 MiB of zeros repeated: fast to make, and read as one stream.
func zeroLayer(t *testing.T, n int64) ([]byte, v1.Hash) {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: n}); err != nil {
		t.Fatal(err)
	}
	zeroMiB := make([]byte, 1<<20)
	member := gz(t, zeroMiB)
	out := gz(t, hdr.Bytes())
	h := sha256.New()
	h.Write(hdr.Bytes())
	for i := int64(0); i < n>>20; i++ {
		out = append(out, member...)
		h.Write(zeroMiB)
	}
	out = append(out, gz(t, make([]byte, 1024))...) // the end of the archive
	h.Write(make([]byte, 1024))
	return out, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// sparseBomb is a tar of one PAX 0.1 sparse file of logical size size
// whose last byte is 'x' (archive/tar cannot write sparse files: the
// ustar blocks are made here).
func sparseBomb(size int64) []byte {
	block := func(name string, typ byte, n int64) []byte {
		b := make([]byte, 512)
		copy(b, name)
		copy(b[100:], "0000644\x00")
		copy(b[108:], "0000000\x00")
		copy(b[116:], "0000000\x00")
		copy(b[124:], fmt.Sprintf("%011o\x00", n))
		copy(b[136:], "14540000000\x00")
		b[156] = typ
		copy(b[257:], "ustar\x0000")
		copy(b[148:], "        ")
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	pad := func(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }
	var recs strings.Builder
	for _, kv := range [][2]string{{"GNU.sparse.map", fmt.Sprintf("%d,1", size-1)}, {"GNU.sparse.numblocks", "1"}, {"GNU.sparse.size", fmt.Sprint(size)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2 // the length's own digits: 2 for these records
		fmt.Fprintf(&recs, "%d%s", n, rec)
	}
	out := block("PaxHeaders/bomb", 'x', int64(recs.Len()))
	out = append(out, pad([]byte(recs.String()))...)
	out = append(out, block("bomb", '0', 1)...)
	out = append(out, pad([]byte("x"))...)
	return append(out, make([]byte, 1024)...)
}

// pullRSS runs devbox pull ref and returns the result and the peak RSS of
// devbox and the stages it waited for, in bytes, as GNU time measures it
// (a direct child of this big test process would inherit its high-water
// mark from before its exec).
func pullRSS(t *testing.T, e *env, ref string) (result, int64) {
	t.Helper()
	tf := filepath.Join(t.TempDir(), "rss")
	c := exec.Command("/usr/bin/time", "-f", "%M", "-o", tf, e.bin, "pull", ref)
	c.Env = e.environ()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("/usr/bin/time (the time package; test/provision.sh installs it): %v", err)
	}
	b, _ := os.ReadFile(tf)
	f := strings.Fields(string(b)) // "Command exited with non-zero status 125" first, then KiB
	if len(f) == 0 {
		t.Fatalf("no figure from /usr/bin/time: %q", b)
	}
	kib, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		t.Fatalf("figure from /usr/bin/time: %q", b)
	}
	return result{out.String(), errb.String(), code}, kib << 10
}

const maxPullRSS = 100 << 20

// TestHostilePullLimits pushes images over each limit to the real registry.
func TestHostilePullLimits(t *testing.T) {
	e := newEnv(t)
	base := e.registry + "/test14b/"
	e.ok("pull", e.registry+"/library/busybox:latest") // the store exists and holds an image

	bomb, bombDiff := zeroLayer(t, 256<<20) // 256 MiB of zeros in about 256 KiB
	abc := hostileTar(t, hEntry{name: "f", body: strings.Repeat("abc", 1<<20)})
	sparse := sparseBomb(1 << 40) // 1 TiB of holes in 3 KiB
	one := hostileTar(t, hEntry{name: "one", body: "1"})
	two := hostileTar(t, hEntry{name: "two", body: "2"})
	uid := hostileTar(t, hEntry{name: "mine", body: "x", uid: 0}, hEntry{name: "far", body: "x", uid: 100000, gid: 0})
	gid := hostileTar(t, hEntry{name: "farg", body: "x", uid: 0, gid: 70000})
	trailing := append(append([]byte{}, one...), []byte("more bytes after the end of the archive")...)
	cfgPath := filepath.Join(e.config, "devbox", "config.toml")

	for _, c := range []struct {
		name    string
		blobs   [][]byte
		diffIDs []v1.Hash
		limits  string // appended to config.toml
		want    []string
		unpack  bool // refused while unpacking, after its blobs were verified (taken back too)
	}{
		{"gzip bomb", [][]byte{bomb}, []v1.Hash{bombDiff}, "", []string{"times its compressed size, the limit set by max_compression_ratio", "hint: if you trust the image, raise max_compression_ratio under [limits] in " + cfgPath}, true},
		{"sparse bomb", [][]byte{gz(t, sparse)}, []v1.Hash{shaOf(sparse)}, "", []string{"the limit set by max_compression_ratio"}, true},
		{"sparse file over max_layer_size", [][]byte{gz(t, sparse)}, []v1.Hash{shaOf(sparse)}, "max_layer_size = \"32MiB\"\n", []string{"unpacks to more than 32 MiB, the limit set by max_layer_size"}, true},
		{"layer size", [][]byte{gz(t, abc)}, []v1.Hash{shaOf(abc)}, "max_layer_size = \"2MiB\"\n", []string{"unpacks to more than 2 MiB, the limit set by max_layer_size"}, true},
		{"layers", [][]byte{gz(t, one), gz(t, two)}, []v1.Hash{shaOf(one), shaOf(two)}, "max_layers = 1\n", []string{"has 2 layers, more than 1 layers, the limit set by max_layers", cfgPath}, false},
		{"document size", [][]byte{gz(t, one)}, []v1.Hash{shaOf(one)}, "max_document_size = 200\n", []string{"is larger than 200 bytes, the limit set by max_document_size"}, false},
		{"bytes after the archive", [][]byte{gz(t, trailing)}, []v1.Hash{shaOf(one)}, "", []string{"does not match the image config's diff_id"}, true},
		{"uid outside the range", [][]byte{gz(t, uid)}, []v1.Hash{shaOf(uid)}, "", []string{"owned by uid 100000, outside the uids your user namespace maps (0-65536)", "/etc/subuid"}, true},
		{"gid outside the range", [][]byte{gz(t, gid)}, []v1.Hash{shaOf(gid)}, "", []string{"owned by gid 70000", "/etc/subgid"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref := base + "limit-" + strings.ReplaceAll(c.name, " ", "-") + ":1"
			pushBlobLayers(t, ref, c.blobs, c.diffIDs)
			orig, _ := os.ReadFile(cfgPath)
			if c.limits != "" {
				os.WriteFile(cfgPath, append(append([]byte{}, orig...), "[limits]\n"+c.limits...), 0o644)
				defer os.WriteFile(cfgPath, orig, 0o644)
			}
			unchanged := storeUnchanged(t, e)
			start := time.Now()
			r, rss := pullRSS(t, e, ref)
			el := time.Since(start)
			t.Logf("exit %d in %v, peak RSS %d MiB: %s", r.code, el.Round(time.Millisecond), rss>>20, strings.TrimSpace(r.stderr))
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if r.code != 125 || !strings.HasPrefix(last, "devbox: ") {
				t.Fatalf("exit %d, stderr %q; want 125 and one line", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(last, w) {
					t.Errorf("error %q lacks %q", last, w)
				}
			}
			if el > 20*time.Second {
				t.Errorf("refused after %v", el)
			}
			if rss > maxPullRSS {
				t.Errorf("peak RSS %d MiB", rss>>20)
			}
			// Nothing new: a refused pull takes back what it created
			// (store.Abandon), and prune has nothing left to do.
			unchanged()
		})
	}
}

// TestHostilePullFidelity: directory modes and ids within the range come
// out exactly as the layer says, through the real unpack stage.
func TestHostilePullFidelity(t *testing.T) {
	e := newEnv(t)
	ref := e.registry + "/test14b/fidelity:1"
	layer := hostileTar(t,
		hEntry{name: "./", typ: tar.TypeDir, mode: 0o555},
		hEntry{name: "ro/", typ: tar.TypeDir, mode: 0o555, uid: 1000, gid: 1000},
		hEntry{name: "ro/f", body: "in a read-only dir", mode: 0o644},
		hEntry{name: "none/", typ: tar.TypeDir, mode: 0o40000},
		hEntry{name: "none/f", body: "in a dir of mode 0000", mode: 0o644},
		hEntry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		hEntry{name: "sg/", typ: tar.TypeDir, mode: 0o2750, gid: 50},
		hEntry{name: "top", body: "x", mode: 0o644, uid: 65536, gid: 65536},
		// Kept: user.* and file capabilities (v2 here; the kernel stores
		// v3, scoped to the namespace). Dropped: trusted.*, SELinux labels
		// and overlayfs's own user.overlay.*.
		hEntry{name: "xa", body: "x", mode: 0o755, xattrs: map[string]string{
			"user.note":           "kept",
			"security.capability": "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			"trusted.secret":      "dropped",
			"security.selinux":    "system_u:object_r:bin_t:s0",
			"user.overlay.opaque": "y",
		}},
	)
	pushBlobLayers(t, ref, [][]byte{gz(t, layer)}, []v1.Hash{shaOf(layer)})
	e.ok("pull", ref)
	dir := e.lowers(ref)[0]
	m := mapping(t)
	for _, c := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{".", 0o555, 0, 0},
		{"ro", 0o555, 1000, 1000},
		{"none", 0, 0, 0},
		{"tmp", 0o777 | os.ModeSticky, 0, 0},
		{"sg", 0o750 | os.ModeSetgid, 0, 50},
		{"top", 0o644, 65536, 65536},
	} {
		fi, err := os.Lstat(filepath.Join(dir, c.path))
		if err != nil {
			t.Fatal(err)
		}
		got := fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
		if got != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, got, c.mode)
		}
		u, g := ownerOf(t, filepath.Join(dir, c.path))
		if wu, wg := m.HostUID(c.uid), m.HostGID(c.gid); u != wu || g != wg {
			t.Errorf("%s: owner %d:%d, want %d:%d (ids %d:%d in the box)", c.path, u, g, wu, wg, c.uid, c.gid)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ro", "f")); err != nil || string(b) != "in a read-only dir" {
		t.Errorf("ro/f: %q %v", b, err)
	}
	xa := filepath.Join(dir, "xa")
	if v, err := getXattr(xa, "user.note"); err != nil || v != "kept" {
		t.Errorf("user.note = %q, %v", v, err)
	}
	// v3 (the version in the top byte of the little-endian magic), its
	// root the namespace's root.
	if v, err := getXattr(xa, "security.capability"); err != nil || len(v) != 24 || v[3] != 3 ||
		int(binary.LittleEndian.Uint32([]byte(v[20:]))) != m.HostUID(0) {
		t.Errorf("security.capability = %x, %v; want a v3 capability of root %d", v, err, m.HostUID(0))
	}
	for _, n := range []string{"trusted.secret", "security.selinux", "user.overlay.opaque"} {
		if v, err := getXattr(xa, n); err == nil {
			t.Errorf("%s = %q, want it dropped", n, v)
		}
	}
	// rmi removes what it cannot read or write as the user.
	e.ok("rmi", ref)
	if _, err := os.Lstat(dir); err == nil {
		t.Errorf("%s stays after rmi", dir)
	}
}

// hostileProxy serves the real registry, with the manifests of some paths
// replaced.
type hostileProxy struct {
	host string
	mu   sync.Mutex
	docs map[string]http.HandlerFunc
}

func newHostileProxy(t *testing.T, registry string) *hostileProxy {
	t.Helper()
	u, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(u)
	hp := &hostileProxy{docs: map[string]http.HandlerFunc{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hp.mu.Lock()
		f := hp.docs[r.URL.Path]
		hp.mu.Unlock()
		if f != nil {
			f(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	hp.host = strings.TrimPrefix(srv.URL, "http://")
	return hp
}

func (hp *hostileProxy) serve(repo, tag, ct string, body []byte) {
	hp.handle(repo, tag, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})
}

func (hp *hostileProxy) handle(repo, tag string, f http.HandlerFunc) {
	hp.mu.Lock()
	hp.docs["/v2/"+repo+"/manifests/"+tag] = f
	hp.mu.Unlock()
}

// TestHostilePullDocuments serves, through a proxy in front of the real
// registry, documents the registry itself refuses to store: type
// confusion (CVE-2021-41190), bad digests, answers without end.
func TestHostilePullDocuments(t *testing.T) {
	e := newEnv(t)
	hp := newHostileProxy(t, e.registry)
	one := hostileTar(t, hEntry{name: "one", body: "1"})
	img := pushBlobLayers(t, e.registry+"/test14b/doc:1", [][]byte{gz(t, one)}, []v1.Hash{shaOf(one)})
	raw, _ := img.RawManifest()
	dg, _ := img.Digest()
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		types.OCIImageIndex, types.OCIManifestSchema1, dg, len(raw))
	withManifests := strings.Replace(string(raw), `"schemaVersion":2,`, `"schemaVersion":2,"manifests":[],`, 1)
	badDigest := strings.Replace(string(raw), `"digest":"sha256:`, `"digest":"sha384:`, 1)
	e.ok("images") // the store exists

	endless := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
		chunk := bytes.Repeat([]byte(" "), 1<<20)
		for i := 0; i < 1<<14; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	hp.handle("test14b/doc", "endless", endless)
	// An index at the size limit, with many entries, none for amd64.
	var big strings.Builder
	fmt.Fprintf(&big, `{"schemaVersion":2,"mediaType":%q,"manifests":[`, types.OCIImageIndex)
	for i := 0; big.Len() < 4<<20-400; i++ {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprintf(&big, `{"mediaType":%q,"digest":"sha256:%064x","size":1,"platform":{"os":"linux","architecture":"s390x"}}`, types.OCIManifestSchema1, i)
	}
	big.WriteString("]}")

	for _, c := range []struct {
		tag, ct, body string
		want          string
	}{
		{"index-as-manifest", string(types.OCIManifestSchema1), index, "is served as " + string(types.OCIManifestSchema1) + " but says it is " + string(types.OCIImageIndex)},
		{"manifest-with-manifests", string(types.OCIManifestSchema1), withManifests, "with the field of an index (manifests)"},
		{"manifest-as-index", string(types.OCIImageIndex), string(raw), "but says it is " + string(types.OCIManifestSchema1)},
		{"unknown-digest-algorithm", string(types.OCIManifestSchema1), badDigest, "sha384"},
		{"endless", "", "", "the limit set by max_document_size"},
		{"big-index", string(types.OCIImageIndex), big.String(), "has no image for linux/amd64; it offers linux/s390x (hint: pick one with --platform)"},
	} {
		t.Run(c.tag, func(t *testing.T) {
			if c.body != "" {
				hp.serve("test14b/doc", c.tag, c.ct, []byte(c.body))
			}
			unchanged := storeUnchanged(t, e)
			r, rss := pullRSS(t, e, hp.host+"/test14b/doc:"+c.tag)
			t.Logf("exit %d, peak RSS %d MiB: %s", r.code, rss>>20, strings.TrimSpace(r.stderr))
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if last := lines[len(lines)-1]; r.code != 125 || !strings.HasPrefix(last, "devbox: ") || !strings.Contains(last, c.want) {
				t.Errorf("exit %d, last line %q; want 125 and %q", r.code, last, c.want)
			}
			if rss > maxPullRSS {
				t.Errorf("peak RSS %d MiB", rss>>20)
			}
			unchanged()
		})
	}
}

func getXattr(path, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(path, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
