//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/test/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// storeFiles lists the store's entries, relative to its root: everything
// under oci/, locks/, layerinfo/ and containers/<id>, and the top-level
// entries of layers/ and tmp/ (their trees belong to subordinate ids).
// The store's permanent locks (gc.lock, store.lock, boxes.lock), which
// the first commands create, are left out.
func storeFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if err != nil {
			out = append(out, rel+" (unreadable)")
			return nil
		}
		if rel == "locks/gc.lock" || rel == "locks/store.lock" || rel == "locks/boxes.lock" {
			return nil
		}
		out = append(out, rel)
		parts := strings.Split(rel, string(filepath.Separator))
		if fi.IsDir() && len(parts) >= 2 && (parts[0] == "layers" || parts[0] == "tmp" || parts[0] == "containers") {
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// storeUnchanged records the store's file list (storeFiles) and returns a
// check, to call after a command that must leave nothing (a rejected or
// failed pull): the list must be the same, and `devbox image prune
// --dry-run` must have nothing to remove. For every test that asserts "the
// store is as before" (the hostile tables, disk full).
func storeUnchanged(t *testing.T, e *env) (check func()) {
	t.Helper()
	if _, err := os.Stat(e.root); err != nil {
		e.ok("images") // creates the store
	}
	before := storeFiles(t, e.root)
	return func() {
		t.Helper()
		after := storeFiles(t, e.root)
		if strings.Join(before, "\n") != strings.Join(after, "\n") {
			t.Errorf("the store changed:\n%s", listDiff(before, after))
		}
		if g := pruneWouldRemove(t, e); len(g) > 0 {
			t.Errorf("prune would still remove %+v", g)
		}
	}
}

// pruneWouldRemove is what `devbox image prune --dry-run --json` lists.
func pruneWouldRemove(t *testing.T, e *env) []store.Garbage {
	t.Helper()
	r := e.ok("image", "prune", "--dry-run", "--json")
	var g []store.Garbage
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil {
		t.Fatalf("image prune --dry-run --json: %v: %q", err, r.stdout)
	}
	return g
}

func listDiff(before, after []string) string {
	in := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range l {
			m[s] = true
		}
		return m
	}
	b, a := in(before), in(after)
	var out []string
	for _, s := range after {
		if !b[s] {
			out = append(out, "+ "+s)
		}
	}
	for _, s := range before {
		if !a[s] {
			out = append(out, "- "+s)
		}
	}
	return strings.Join(out, "\n")
}

// verifyReport runs devbox verify --json and returns its report and exit
// code.
func verifyReport(t *testing.T, e *env, args ...string) (store.VerifyReport, int) {
	t.Helper()
	r := e.run(append([]string{"verify", "--json"}, args...)...)
	var rep store.VerifyReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify --json: exit %d, %v: %q %q", r.code, err, r.stdout, r.stderr)
	}
	return rep, r.code
}

// pushLayers pushes an image with one layer per entry list.
func pushLayers(t *testing.T, ref string, layers ...[]tarEntry) {
	t.Helper()
	img := empty.Image
	for _, entries := range layers {
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
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
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

// TestFailedPullLeavesNothing: an image whose third layer is hostile
// fails after its first two layers were downloaded and unpacked; the
// failing pull takes back all it created, next to an image already stored
// that shares its first layer (which stays).
func TestFailedPullLeavesNothing(t *testing.T) {
	e := newEnv(t)
	base := []tarEntry{{name: "etc/base", body: "shared by both images"}}
	good := e.registry + "/test/gc-good:1"
	pushLayers(t, good, base)
	e.ok("pull", "-q", good)
	bad := e.registry + "/test/gc-bad:1"
	pushLayers(t, bad, base, []tarEntry{{name: "usr/two", body: "fine"}}, []tarEntry{{name: "../../escape", body: "x"}})
	check := storeUnchanged(t, e)
	r := e.run("pull", bad)
	if r.code != 125 || !strings.Contains(r.stderr, "hostile") {
		t.Fatalf("pull of the hostile image: exit %d, %q", r.code, r.stderr)
	}
	check()
	if rep, code := verifyReport(t, e); code != 0 || len(rep.Problems) != 0 {
		t.Errorf("verify after the failed pull: exit %d, %+v", code, rep.Problems)
	}
	for _, l := range e.lowers(good) {
		if _, err := os.Lstat(l); err != nil {
			t.Errorf("the stored image lost its layer: %v", err)
		}
	}
}

// TestPruneKeepsBoxLayers: a box created and never started (only its
// box.json names its layers) keeps them through rmi and image prune; prune
// --dry-run lists the box and its layers; prune -f leaves an empty store.
func TestPruneKeepsBoxLayers(t *testing.T) {
	e := newEnv(t)
	e.ok("ls") // the store and containers/
	empty := storeUnchanged(t, e)
	ref := strings.TrimSpace(e.ok("pull", "-q", "busybox").stdout)
	e.ok("create", "gcbox", "--image", "busybox")
	lowers := e.lowers(ref)
	// rmi refuses an image a box was made from; -f untags it anyway.
	if r := e.run("rmi", ref); r.code != 125 || !strings.Contains(r.stderr, "gcbox") {
		t.Fatalf("rmi of a box's image: exit %d, %q; want 125 naming the box", r.code, r.stderr)
	}
	e.ok("rmi", "-f", ref)
	e.ok("image", "prune")
	for _, l := range lowers {
		if _, err := os.Lstat(l); err != nil {
			t.Fatalf("the box's layer %s was removed: %v", l, err)
		}
	}
	if rep, code := verifyReport(t, e); code != 0 || len(rep.Problems) != 0 {
		t.Errorf("verify: exit %d, %+v", code, rep.Problems)
	}
	r := e.ok("prune", "--dry-run", "--json")
	var items []store.Garbage
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, it := range items {
		kinds[it.Kind]++
		if it.Kind == store.KindLayer && it.Size <= 0 {
			t.Errorf("layer without a size: %+v", it)
		}
	}
	if kinds[store.KindBox] != 1 || kinds[store.KindLayer] != len(lowers) {
		t.Errorf("prune --dry-run lists %v, want the box and its %d layer(s)", items, len(lowers))
	}
	var df struct {
		Boxes, Layers struct{ Total, Active int }
		Reclaimable   int64
	}
	if err := json.Unmarshal([]byte(e.ok("df", "--json").stdout), &df); err != nil {
		t.Fatal(err)
	}
	if df.Boxes.Total != 1 || df.Layers.Active != len(lowers) || df.Reclaimable <= 0 {
		t.Errorf("df: %+v", df)
	}
	// A damaged box record is a problem verify reports and --repair
	// leaves (boxes are never removed by it); prune -f removes the box.
	rec := filepath.Join(e.root, "containers")
	ents, _ := os.ReadDir(rec)
	if len(ents) != 1 {
		t.Fatalf("containers/: %v", ents)
	}
	os.WriteFile(filepath.Join(rec, ents[0].Name(), "box.json"), []byte("{not json"), 0o600)
	for _, args := range [][]string{nil, {"--repair"}} {
		rep, code := verifyReport(t, e, args...)
		if code != 1 || len(rep.Problems) != 1 || rep.Problems[0].Kind != "box" {
			t.Errorf("verify %v of a damaged record: exit %d, %+v", args, code, rep.Problems)
		}
	}
	e.ok("prune", "-f")
	empty()
}

// TestVerifyRepairs damages a pulled image (a flipped byte in a blob, a
// layer's marker removed): verify finds both and exits 1; --repair removes
// them, untags the image and names it; verify is then clean and a pull
// restores the image.
func TestVerifyRepairs(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "-q", "busybox")
	st := e.store()
	blobs, _ := os.ReadDir(filepath.Join(st.OCIDir(), "blobs", "sha256"))
	var biggest string
	var size int64
	for _, b := range blobs {
		if fi, _ := b.Info(); fi.Size() > size {
			biggest, size = b.Name(), fi.Size()
		}
	}
	p := filepath.Join(st.OCIDir(), "blobs", "sha256", biggest)
	data, _ := os.ReadFile(p)
	data[len(data)/2] ^= 0xff
	os.WriteFile(p, data, 0o644)
	rep, code := verifyReport(t, e)
	if code != 1 || len(rep.Problems) != 2 {
		t.Fatalf("verify of a damaged store: exit %d, %+v", code, rep.Problems)
	}
	rep, code = verifyReport(t, e, "--repair")
	if code != 0 || len(rep.Problems) != 0 || len(rep.PullAgain) != 1 {
		t.Fatalf("verify --repair: exit %d, %+v", code, rep)
	}
	e.ok("pull", "-q", rep.PullAgain[0])
	if rep, code := verifyReport(t, e); code != 0 || len(rep.Problems) != 0 || rep.Garbage != 0 {
		t.Errorf("after the new pull: exit %d, %+v", code, rep)
	}
}

// TestPullKilledAtRandom kills (SIGKILL) a cold pull of the Debian image at
// a random moment, 20 times: each time verify reports no problem (what a
// killed pull leaves is garbage, which verify counts and image prune
// removes), the next pull succeeds, and rmi leaves an empty store.
func TestPullKilledAtRandom(t *testing.T) {
	e := newEnv(t)
	empty := storeUnchanged(t, e)
	t0 := time.Now()
	e.ok("pull", "-q", "debian:trixie")
	full := time.Since(t0)
	e.ok("rmi", "debian:trixie")
	seed := uint64(time.Now().UnixNano())
	t.Logf("a full pull takes %v; seed %d", full, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	garbage := 0
	for i := 0; i < 20; i++ {
		delay := time.Duration(rng.Int64N(int64(full)))
		c := e.cmd("pull", "-q", "debian:trixie")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		// Its unpack stage dies with it (parent-death signal); give it a
		// moment to go, as a user would.
		waitStagesGone(t, e)
		rep, code := verifyReport(t, e)
		if code != 0 || len(rep.Problems) != 0 {
			t.Fatalf("iteration %d (killed after %v): verify exit %d, %+v", i, delay, code, rep.Problems)
		}
		garbage += rep.Garbage
		e.ok("pull", "-q", "debian:trixie")
		if rep, code := verifyReport(t, e); code != 0 || len(rep.Problems) != 0 || rep.Garbage != 0 {
			t.Fatalf("iteration %d: after the next pull: exit %d, %+v", i, code, rep)
		}
		e.ok("rmi", "debian:trixie")
	}
	t.Logf("verify counted %d garbage entries over 20 kills", garbage)
	empty()
}

// waitStagesGone waits until no lock of the store is held: the killed
// pull's unpack stage, which dies with it, has gone.
func waitStagesGone(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		held := false
		locks, _ := filepath.Glob(filepath.Join(e.root, "locks", "*.lock"))
		for _, l := range locks {
			f, err := os.Open(l)
			if err != nil {
				continue
			}
			if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
				held = true
			}
			f.Close()
		}
		if !held {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("a lock of the store is still held 10 s after the pull was killed")
}

// smallFS is the 64 MiB filesystem test/provision.sh mounts for the
// disk-full test.
const smallFS = "/var/lib/devbox-test/small"

// TestDiskFull keeps the store on a filesystem too small for the Debian
// image: the pull fails with the disk-space hint, leaves the store as it
// was, and verify reports it clean; busybox still fits and works.
func TestDiskFull(t *testing.T) {
	e := newEnv(t)
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(smallFS, &sfs); err != nil || syscall.Access(smallFS, 2 /* W_OK */) != nil {
		testutil.Skip(t, smallFS+" is missing or not writable (test/provision.sh mounts it)")
	}
	dir, err := os.MkdirTemp(smallFS, "store-")
	if err != nil {
		t.Fatal(err)
	}
	// The store on the small filesystem, emptied through devbox (purge)
	// before it is removed; newEnv's own purge then finds the original.
	data, root := e.data, e.root
	e.data, e.root = dir, filepath.Join(dir, "devbox")
	t.Cleanup(func() {
		e.purge()
		os.RemoveAll(dir)
		e.data, e.root = data, root
	})
	e.ok("images")
	check := storeUnchanged(t, e)
	r := e.run("pull", "debian:trixie")
	if r.code != 125 || !strings.Contains(r.stderr, "no space left on device") || !strings.Contains(r.stderr, "hint: free disk space") {
		t.Fatalf("pull onto a full disk: exit %d, %q; want 125 and the disk-space hint", r.code, r.stderr)
	}
	check()
	if rep, code := verifyReport(t, e); code != 0 || len(rep.Problems) != 0 {
		t.Errorf("verify after disk full: exit %d, %+v", code, rep)
	}
	e.ok("pull", "-q", "busybox")
	if r := e.ok("run", "busybox", "--", "echo", "fits"); strings.TrimSpace(r.stdout) != "fits" {
		t.Errorf("run: %q", r.stdout)
	}
}

// TestPruneDuringPull runs image prune (and its dry run) over and over
// while a cold pull runs: the collector waits for the pull's shared
// gc.lock, never removes what the pull wrote before it tags, and the
// store ends complete and clean.
func TestPruneDuringPull(t *testing.T) {
	e := newEnv(t)
	e.ok("images")
	c := e.cmd("pull", "-q", "debian:trixie")
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	prunes := 0
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("pull: %v: %s", err, errb.String())
			}
			finished = true
		default:
			e.ok("image", "prune", "--dry-run")
			e.ok("image", "prune")
			prunes++
		}
	}
	t.Logf("%d prunes during the pull", prunes)
	if rep, code := verifyReport(t, e); code != 0 || len(rep.Problems) != 0 || rep.Garbage != 0 || rep.Images != 1 {
		t.Errorf("after the pull: exit %d, %+v", code, rep)
	}
	if r := e.ok("run", "--net", "none", "debian:trixie", "--", "cat", "/etc/debian_version"); strings.TrimSpace(r.stdout) == "" {
		t.Error("the image does not run")
	}
}
