//go:build integration

// Package integration runs the real devbox binary (DEVBOX_BIN) as an
// unprivileged user against a real registry (DEVBOX_TEST_REGISTRY, Debian's
// docker-registry on 127.0.0.1 set up by test/provision.sh) and checks facts
// on disk and inside the namespaces. The test binary re-executes itself for
// the in-namespace checks (stage "walk").
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/devbox-dev/devbox/internal/warm"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/test/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestMain(m *testing.M) {
	switch st := rootless.CurrentStage(); {
	case st == "walk":
		os.Exit(walkMain())
	case st == "rmtree":
		os.Exit(store.RemoveMain())
	case os.Getenv(stageEnv) == rawSynStage:
		os.Exit(rawSynMain())
	}
	os.Exit(m.Run())
}

// env is one isolated devbox user environment: its own config and store.
type env struct {
	t        *testing.T
	bin      string
	registry string
	home     string
	config   string
	data     string
	root     string // the store
}

func registryAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("DEVBOX_TEST_REGISTRY")
	if addr == "" {
		addr = "127.0.0.1:5000"
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/v2/")
	if err != nil {
		testutil.Skip(t, "no test registry at "+addr+" (run test/provision.sh as root, or make test)")
	}
	resp.Body.Close()
	return addr
}

func devboxBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("DEVBOX_BIN")
	if bin == "" {
		testutil.Skip(t, "DEVBOX_BIN is not set (make test builds devbox and sets it)")
	}
	return bin
}

func mapping(t *testing.T) rootless.Mapping {
	t.Helper()
	m, err := rootless.Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.RequireUnprivilegedUserns(t, !m.Single())
	return m
}

func newEnv(t *testing.T) *env {
	t.Helper()
	mapping(t)
	e := &env{t: t, bin: devboxBin(t), registry: registryAddr(t)}
	base := t.TempDir()
	os.Chmod(base, 0o755)
	e.home = filepath.Join(base, "home")
	e.config = filepath.Join(base, "config")
	e.data = filepath.Join(base, "data")
	e.root = filepath.Join(e.data, "devbox")
	for _, d := range []string{e.home, filepath.Join(e.config, "devbox"), e.data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf("[registries]\ninsecure = [%q]\n[registries.mirrors]\n\"docker.io\" = [%q]\n", e.registry, e.registry)
	// No first-start provisioning (it would reach the image's own package
	// repositories); provision_test.go turns it on with a local one.
	cfg += "[provision]\nauto = false\n"
	if err := os.WriteFile(filepath.Join(e.config, "devbox", "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// Store content is owned by subordinate ids: remove it through devbox
	// before the test framework removes the temporary directory.
	t.Cleanup(func() { e.purge() })
	return e
}

func (e *env) environ() []string {
	return []string{
		"HOME=" + e.home, "XDG_CONFIG_HOME=" + e.config, "XDG_DATA_HOME=" + e.data,
		"PATH=" + os.Getenv("PATH"), "USER=" + os.Getenv("USER"),
		"XDG_RUNTIME_DIR=" + os.Getenv("XDG_RUNTIME_DIR"),
		// Warm holders (internal/holder) of tests do not stay long.
		warm.IdleEnv + "=20",
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) cmd(args ...string) *exec.Cmd {
	c := exec.Command(e.bin, args...)
	c.Env = e.environ()
	return c
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runEnv(nil, args...)
}

// runEnv is run with extra environment variables.
func (e *env) runEnv(extra []string, args ...string) result {
	e.t.Helper()
	c := e.cmd(args...)
	c.Env = append(c.Env, extra...)
	return e.runCmd(c)
}

// runCmd runs devbox command c and returns what it wrote and its exit code.
func (e *env) runCmd(c *exec.Cmd) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running devbox %v: %v", c.Args[1:], err)
	}
	return result{out.String(), errb.String(), code}
}

func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("devbox %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (e *env) purge() {
	r := e.run("images", "--json")
	var imgs []store.Image
	_ = json.Unmarshal([]byte(r.stdout), &imgs)
	for _, i := range imgs {
		e.run("rmi", "-f", i.Ref)
	}
	// A stopped box keeps its runtime directory (its logs) until devbox rm;
	// the boxes of this test are removed below without it.
	if ents, _ := os.ReadDir(filepath.Join(e.root, "containers")); len(ents) > 0 {
		for _, ent := range ents {
			os.RemoveAll(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox", ent.Name()[:min(len(ent.Name()), 16)]))
		}
	}
	// Kept boxes: their writable layers belong to subordinate ids.
	if ents, _ := os.ReadDir(filepath.Join(e.root, "containers")); len(ents) > 0 {
		req := store.RemoveRequest{Root: e.root}
		for _, ent := range ents {
			req.Paths = append(req.Paths, filepath.Join(e.root, "containers", ent.Name()))
		}
		body, _ := json.Marshal(req)
		if m, err := rootless.Detect(); err == nil {
			rootless.Run(rootless.Spec{Stage: "rmtree", Mapping: m, Stdin: bytes.NewReader(body)})
		}
	}
	e.run("image", "prune")
	_ = filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}

func (e *env) store() *store.Store {
	e.t.Helper()
	st, err := store.Open(e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// lowers returns the unpacked layer directories of ref, top-most first.
func (e *env) lowers(ref string) []string {
	e.t.Helper()
	st := e.store()
	img, err := st.Lookup(ref)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := st.Manifest(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(img.ID, "sha256:")})
	if err != nil {
		e.t.Fatal(err)
	}
	cf, err := st.ConfigFile(m.Config.Digest)
	if err != nil {
		e.t.Fatal(err)
	}
	chains := store.ChainIDs(cf.RootFS.DiffIDs)
	var out []string
	for i := len(chains) - 1; i >= 0; i-- {
		out = append(out, st.LayerDir(chains[i]))
	}
	return out
}

// blobsIntact checks that every visible blob's content matches its name.
func blobsIntact(t *testing.T, st *store.Store) int {
	t.Helper()
	dir := filepath.Join(st.OCIDir(), "blobs", "sha256")
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		f, err := os.Open(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(f)
		f.Close()
		if err != nil || h.Hex != ent.Name() {
			t.Errorf("blob %s is damaged (content hashes to %s)", ent.Name(), h.Hex)
		}
	}
	return len(ents)
}

func ownerOf(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
