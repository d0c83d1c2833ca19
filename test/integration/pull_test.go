//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/test/expect"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func expectDir(t *testing.T) string {
	d := os.Getenv("DEVBOX_TEST_EXPECT_DIR")
	if d == "" {
		d = "/var/lib/devbox-test/expect"
	}
	return d
}

// TestPullMatchesReference pulls each offline-built image through devbox
// and compares the unpacked root filesystem, as overlayfs shows it inside
// the keep-id namespace, with an independent reference extraction: paths,
// types, modes (setuid, sticky), owners, link targets, sizes, content
// hashes, hard-link groups, user xattrs, mtimes.
func TestPullMatchesReference(t *testing.T) {
	cases := []struct {
		arg, ref, expectName, platform string
	}{
		{"busybox", "docker.io/library/busybox:1", "library_busybox_1.json", ""},
		{"debian:trixie", "docker.io/library/debian:trixie", "library_debian_trixie.json", ""},
		{"REG/test/layers:latest", "REG/test/layers:latest", "test_layers_latest.json", ""},
		{"REG/test/multiarch:latest", "REG/test/multiarch:latest", "test_multiarch_latest.json", "linux/amd64"},
	}
	for _, c := range cases {
		t.Run(c.arg, func(t *testing.T) {
			e := newEnv(t)
			arg := strings.ReplaceAll(c.arg, "REG", e.registry)
			ref := strings.ReplaceAll(c.ref, "REG", e.registry)
			exp := filepath.Join(expectDir(t), c.expectName)
			if _, err := os.Stat(exp); err != nil {
				t.Fatalf("expectation %s missing (test/provision.sh writes it): %v", exp, err)
			}
			r := e.ok("pull", arg)
			if strings.TrimSpace(r.stdout) != ref {
				t.Errorf("pull printed %q, want %q", r.stdout, ref)
			}
			compareInNamespace(t, e, ref, exp, c.platform)
		})
	}
}

func TestPullMultiArch(t *testing.T) {
	e := newEnv(t)
	ref := e.registry + "/test/multiarch:latest"
	r := e.run("pull", "--platform", "linux/s390x", ref)
	if r.code != 125 || !strings.Contains(r.stderr, "offers") || !strings.Contains(r.stderr, "linux/arm64") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("unmatched platform: exit %d, stderr %q", r.code, r.stderr)
	}
	e.ok("pull", "--platform", "linux/arm64", ref)
	exp := filepath.Join(expectDir(t), "test_multiarch_latest.json")
	f, err := expect.Load(exp)
	if err != nil {
		t.Fatal(err)
	}
	var arm string
	for _, i := range f.Images {
		if strings.HasPrefix(i.Platform, "linux/arm64") {
			arm = i.Platform
		}
	}
	compareInNamespace(t, e, ref, exp, arm)
	var imgs []store.Image
	json.Unmarshal([]byte(e.ok("images", "--json").stdout), &imgs)
	if len(imgs) != 1 || !strings.HasPrefix(imgs[0].Platform, "linux/arm64") {
		t.Errorf("images = %+v", imgs)
	}
}

// TestStoreOwnershipIsKeepID checks the on-disk owners from the host: image
// root is the first subordinate uid, the user's own uid stays the user's.
func TestStoreOwnershipIsKeepID(t *testing.T) {
	e := newEnv(t)
	m := mapping(t)
	e.ok("pull", e.registry+"/test/layers:latest")
	lowers := e.lowers(e.registry + "/test/layers:latest")
	bottom := lowers[len(lowers)-1]
	uid, gid := ownerOf(t, filepath.Join(bottom, "bin"))
	if uid != m.HostUID(0) || gid != m.HostGID(0) || uid != m.SubUIDs[0].Start {
		t.Errorf("image root owns /bin as host %d:%d, want the first subuid %d", uid, gid, m.SubUIDs[0].Start)
	}
	found := 0
	filepath.Walk(bottom, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		for _, id := range []int{33, 1000, 65534} {
			if int(st.Uid) == m.HostUID(id) {
				found |= 1 << (id % 31)
			}
		}
		return nil
	})
	if found == 0 {
		t.Errorf("no file owned by the mapped ids of 33/1000/65534 in %s", bottom)
	}
}

// TestSkopeoAndUmociReadTheStore proves the store is a real OCI layout.
func TestSkopeoAndUmociReadTheStore(t *testing.T) {
	e := newEnv(t)
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (test/provision.sh installs it)", tool)
		}
	}
	ref := e.registry + "/test/layers:latest"
	e.ok("pull", ref)
	layout := e.store().OCIDir()
	out, err := exec.Command("skopeo", "inspect", "oci:"+layout+":"+ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var info struct{ Layers []string }
	json.Unmarshal(out, &info)
	if len(info.Layers) < 5 {
		t.Errorf("skopeo sees %d layers: %s", len(info.Layers), out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("skopeo", "copy", "oci:"+layout+":"+ref, "dir:"+filepath.Join(dir, "copy")).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	// umoci 0.4 cannot read zstd layers (test/layers has one), so it unpacks
	// the busybox image from the same store.
	e.ok("pull", "busybox")
	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command("umoci", "unpack", "--rootless", "--image", layout+":docker.io/library/busybox:1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	// umoci --rootless leaves every file owned by the caller; compare the
	// rest against the same reference.
	f, err := expect.Load(filepath.Join(expectDir(t), "library_busybox_1.json"))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := f.Image("")
	diffs, err := expect.Compare(img, filepath.Join(bundle, "rootfs"), expect.Options{IgnoreOwners: true, XattrPrefixes: []string{"user.test"}, CheckDirMtime: false})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("umoci's unpack of devbox's store differs from the reference:\n%s", strings.Join(diffs, "\n"))
	}
}

func TestConcurrentPullsStoreOnce(t *testing.T) {
	e := newEnv(t)
	ref := "debian:trixie"
	var wg sync.WaitGroup
	res := make([]result, 3)
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = e.run("pull", "-q", ref)
		}(i)
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("pull %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	st := e.store()
	imgs, _ := st.Images()
	if len(imgs) != 1 {
		t.Errorf("%d images stored, want 1", len(imgs))
	}
	if n := blobsIntact(t, st); n != 3 { // manifest, config, one layer
		t.Errorf("%d blobs stored, want 3", n)
	}
	if layers, _ := os.ReadDir(st.LayersDir()); len(layers) != 1 {
		t.Errorf("%d unpacked layers, want 1", len(layers))
	}
	if ents, _ := os.ReadDir(st.TmpDir()); len(ents) != 0 {
		t.Errorf("leftovers in tmp: %v", ents)
	}
}

// TestInterruptedPull kills devbox while it downloads (SIGKILL) and while
// it runs (SIGINT): no half-written blob is ever visible, and the next pull
// finishes the job.
func TestInterruptedPull(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			st := e.store()
			c := e.cmd("pull", "debian:trixie")
			var errb bytes.Buffer
			c.Stderr = &errb
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				ents, _ := os.ReadDir(st.TmpDir())
				if len(ents) > 0 {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			c.Process.Signal(sig)
			err := c.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if sig == syscall.SIGINT && code != 0 && code != 130 {
				t.Errorf("after SIGINT: exit %d (want 130, or 0 if it had finished): %s", code, errb.String())
			}
			blobsIntact(t, st)
			if imgs, _ := st.Images(); len(imgs) == 1 {
				t.Log("the pull had already finished when interrupted")
			}
			e.ok("pull", "debian:trixie")
			blobsIntact(t, st)
			e.ok("image", "prune")
			if ents, _ := os.ReadDir(st.TmpDir()); len(ents) != 0 {
				t.Errorf("leftovers in tmp after prune: %v", ents)
			}
			compareInNamespace(t, e, "docker.io/library/debian:trixie", filepath.Join(expectDir(t), "library_debian_trixie.json"), "")
		})
	}
}

// TestHostileImageIsRejected pushes an image whose layer writes through a
// symlink to outside its root, and one with a ../ path: the pull fails with
// a clear error and the store keeps nothing of it.
func TestHostileImageIsRejected(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	os.Chmod(outside, 0o777)
	cases := map[string][]tarEntry{
		"symlink":  {{name: "evil", link: outside, typ: tar.TypeSymlink}, {name: "evil/pwned", body: "owned"}},
		"dotdot":   {{name: "../../../../../../" + strings.TrimPrefix(outside, "/") + "/pwned", body: "owned"}},
		"hardlink": {{name: "h", link: "../../../../../../etc/passwd", typ: tar.TypeLink}},
		"whiteout": {{name: "../.wh.victim"}},
	}
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep"), 0o666)
	for n, entries := range cases {
		t.Run(n, func(t *testing.T) {
			ref := e.registry + "/test/hostile-" + n + ":latest"
			pushImage(t, ref, entries)
			unchanged := storeUnchanged(t, e)
			r := e.run("pull", ref)
			defer unchanged()
			if r.code != 125 || !strings.Contains(r.stderr, "hostile") {
				t.Errorf("exit %d, stderr %q; want 125 and an explanation", r.code, r.stderr)
			}
			if _, err := os.Lstat(filepath.Join(outside, "pwned")); err == nil {
				t.Fatal("a layer wrote outside its root")
			}
			if b, _ := os.ReadFile(victim); string(b) != "keep" {
				t.Fatal("a whiteout removed a file outside the root")
			}
			st := e.store()
			if _, err := st.Lookup(ref); err == nil {
				t.Error("hostile image was tagged")
			}
			if ents, _ := os.ReadDir(st.TmpDir()); len(ents) != 0 {
				t.Errorf("leftovers in tmp: %v", ents)
			}
		})
	}
}

type tarEntry struct {
	name, body, link string
	typ              byte
}

func pushImage(t *testing.T, ref string, entries []tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range entries {
		h := &tar.Header{Name: en.name, Typeflag: en.typ, Linkname: en.link, Mode: 0o644, Size: int64(len(en.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(en.body))
		}
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, _ = mutate.ConfigFile(img, cf)
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func TestPullErrorsAndRmi(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"pull", e.registry + "/no/such:image"}, "image not found"},
		{[]string{"pull", "--platform", "linux", "busybox"}, "invalid platform"},
		{[]string{"pull", "http://x/y"}, "without a scheme"},
		{[]string{"pull", "127.0.0.1:1/x/y:1"}, "hint:"},
		{[]string{"rmi", "never-pulled"}, "not known"},
		{[]string{"pull"}, "requires at least 1 arg"},
	}
	for _, c := range cases {
		r := e.run(c.args...)
		if r.code != 125 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("devbox %v: exit %d stderr %q; want 125 and one line containing %q", c.args, r.code, r.stderr, c.want)
		}
	}
	e.ok("pull", "-q", "busybox")
	e.ok("pull", "-q", e.registry+"/test/layers:latest")
	st := e.store()
	e.ok("rmi", "busybox", e.registry+"/test/layers:latest")
	if n := blobsIntact(t, st); n != 0 {
		t.Errorf("%d blobs left after rmi", n)
	}
	if ents, _ := os.ReadDir(st.LayersDir()); len(ents) != 0 {
		t.Errorf("%d unpacked layers left after rmi", len(ents))
	}
}
