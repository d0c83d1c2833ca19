package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/cmd/factory"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/cmd/root"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/test/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuiltDevbox()
	os.Exit(code)
}

// env is an isolated user: its own home, config and store.
type env struct {
	t    *testing.T
	bin  string
	home string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, bin: testutil.DevboxBin(t), home: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(e.home, ".config", "devbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) storeRoot() string { return filepath.Join(e.home, ".local", "share", "devbox") }

type result struct {
	code           int
	stdout, stderr string
}

// run runs devbox with stdin at EOF; it must finish within 30 s (nothing
// may prompt).
func (e *env) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = []string{
		"HOME=" + e.home, "USER=" + os.Getenv("USER"), "PATH=" + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + filepath.Join(e.home, ".config"), "XDG_DATA_HOME=" + filepath.Join(e.home, ".local", "share"),
		"XDG_RUNTIME_DIR=" + os.Getenv("XDG_RUNTIME_DIR"), "LANG=C.UTF-8",
	}
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		e.t.Fatalf("devbox %q did not finish in 30 s (waiting for input?)", args)
	}
	r := result{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// oneLineError checks the error contract: exit 125, nothing on stdout, one
// line "devbox: … (hint: …)" on stderr, no stack trace.
func oneLineError(t *testing.T, args []string, r result, want string) {
	t.Helper()
	switch {
	case r.code != 125:
		t.Errorf("devbox %q: exit %d, want 125 (stderr %q)", args, r.code, r.stderr)
	case r.stdout != "":
		t.Errorf("devbox %q: wrote %q to stdout on error", args, r.stdout)
	case strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "devbox: "):
		t.Errorf("devbox %q: stderr is not one \"devbox: …\" line: %q", args, r.stderr)
	case !strings.Contains(r.stderr, "(hint: "):
		t.Errorf("devbox %q: no hint in %q", args, r.stderr)
	case strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic"):
		t.Errorf("devbox %q: a stack trace: %q", args, r.stderr)
	case want != "" && !strings.Contains(r.stderr, want):
		t.Errorf("devbox %q: stderr %q does not say %q", args, r.stderr, want)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"pull", "--platform", "linux", "debian"}, `invalid platform "linux"`},
		{[]string{"pull", "--platform", "linux/sparc", "debian"}, `unknown architecture "sparc"`},
		{[]string{"pull", "--platform", "windows/amd64", "debian"}, "Linux images only"},
		{[]string{"run", "--platform", "linux/arm64/v8/x", "debian"}, "invalid platform"},
		{[]string{"run", "--pull", "sometimes", "debian"}, `invalid --pull "sometimes"`},
		{[]string{"--store", "/proc/devbox-test/x", "images"}, "/proc/devbox-test/x"},
		{[]string{"--store", "/etc/passwd/x", "images"}, "not a directory"},
		{[]string{"--log-level", "loud", "version"}, `invalid --log-level "loud"`},
		{[]string{"help", "exit-cod"}, `did you mean "exit-codes"?`},
		{[]string{"nosuchcommand"}, `unknown command "nosuchcommand"`},
		{[]string{"pull"}, "requires at least 1 arg"},
		{[]string{"images", "extra"}, "unknown command"},
		{[]string{"rmi", "debain"}, `did you mean the alias "debian"?`},
		{[]string{"pull", "https://quay.io/a/b"}, "without a scheme"},
		{[]string{"pull", "debian\nrm -rf"}, "control characters"},
		{[]string{"pull", "Fedroa:"}, `did you mean the alias "fedora"?`},
		{[]string{"doctor", "now"}, "unknown command"},
		{[]string{"build", "--pull", "sometimes"}, `invalid --pull "sometimes"`},
		{[]string{"build", "/nonexistent/devbox.toml"}, "no box file /nonexistent/devbox.toml"},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		cases = append(cases, struct {
			args []string
			want string
		}{[]string{"--store", filepath.Join(ro, "store"), "images"}, "must be writable by you"})
	}
	for _, c := range cases {
		oneLineError(t, c.args, e.run(c.args...), c.want)
	}
}

func TestBrokenConfig(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.home, ".config", "devbox", "config.toml"), []byte("[registries\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oneLineError(t, []string{"images"}, e.run("images"), "line 2")
	r := e.run("doctor", "--json")
	var rs []map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || r.code != 1 {
		t.Fatalf("doctor with a broken config: exit %d, %v, stdout %q", r.code, err, r.stdout)
	}
	for _, x := range rs {
		if x["check"] == "config" && (x["status"] != "fail" || !strings.Contains(x["message"], "line 2")) {
			t.Errorf("config check: %v", x)
		}
	}
}

// Every command rejects an unknown flag the same way.
func TestEveryCommandRejectsUnknownFlags(t *testing.T) {
	e := newEnv(t)
	ios, _, _, _ := iostreams.Test()
	tree := root.NewCmdRoot(factory.New(ios, slog.New(slog.NewTextHandler(io.Discard, nil))))
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			if sub.Hidden || !sub.IsAvailableCommand() {
				continue
			}
			p := append(slices.Clone(path), sub.Name())
			if sub.Runnable() && sub.Name() != "help" {
				paths = append(paths, p)
			}
			walk(sub, p)
		}
	}
	walk(tree, nil)
	if len(paths) < 10 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, p := range paths {
		args := append(slices.Clone(p), "--no-such-flag")
		oneLineError(t, args, e.run(args...), "unknown flag: --no-such-flag")
	}
}

func decode[T any](t *testing.T, what string, r result) T {
	t.Helper()
	var v T
	if r.stderr != "" {
		t.Errorf("%s: stderr %q, want nothing (messages only on error)", what, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("%s: stdout is not the documented JSON: %v: %q", what, err, r.stdout)
	}
	return v
}

// keys checks that an object has the required keys and no others than the
// optional ones.
func keys(t *testing.T, what string, obj map[string]any, required, optional []string) {
	t.Helper()
	for _, k := range required {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s: key %q missing in %v", what, k, obj)
		}
	}
	for k := range maps.Keys(obj) {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			t.Errorf("%s: undocumented key %q (add it to docs/json.md and this test)", what, k)
		}
	}
}

func TestJSONSchemas(t *testing.T) {
	e := newEnv(t)
	if got := decode[[]any](t, "images --json (no store)", e.run("images", "--json")); len(got) != 0 {
		t.Errorf("empty store: %v", got)
	}
	st, err := store.Open(e.storeRoot())
	if err != nil {
		t.Fatal(err)
	}
	desc := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ef", 32)}}
	if err := st.Tag("docker.io/library/debian:13", desc, store.Origin{From: "mirror.example/library/debian:13"}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"images", "--json"}, {"image", "ls", "--json"}} {
		imgs := decode[[]map[string]any](t, strings.Join(args, " "), e.run(args...))
		if len(imgs) != 1 || imgs[0]["ref"] != "docker.io/library/debian:13" {
			t.Fatalf("%q: %v", args, imgs)
		}
		keys(t, "images", imgs[0], []string{"ref", "id", "digest", "size", "pulled"}, []string{"sourceDigest", "from", "created", "platform"})
	}

	// The entry above has no manifest blob: verify finds it, exits 1.
	for _, args := range [][]string{{"verify", "--json"}, {"image", "verify", "--json"}} {
		r := e.run(args...)
		rep := decode[map[string]any](t, strings.Join(args, " "), r)
		keys(t, "verify", rep, []string{"images", "blobs", "layers", "boxes", "problems", "unmarked", "garbage", "garbageBytes", "snapshots"}, []string{"repaired", "pullAgain"})
		probs, _ := rep["problems"].([]any)
		if r.code != 1 || len(probs) != 1 {
			t.Fatalf("%q: exit %d, %v; want 1 and the missing manifest", args, r.code, rep)
		}
		keys(t, "verify.problems", probs[0].(map[string]any), []string{"kind", "name", "issue"}, []string{"repair", "pull"})
	}
	for _, args := range [][]string{{"df", "--json"}, {"system", "df", "--json"}} {
		df := decode[map[string]any](t, strings.Join(args, " "), e.run(args...))
		keys(t, "df", df, []string{"images", "layers", "boxes", "unused", "reclaimable"}, nil)
		for _, row := range []string{"images", "layers", "boxes", "unused"} {
			if m, ok := df[row].(map[string]any); !ok {
				t.Errorf("df: %s is %T", row, df[row])
			} else {
				keys(t, "df."+row, m, []string{"total", "active", "size", "reclaimable"}, nil)
			}
		}
	}
	os.WriteFile(filepath.Join(st.TmpDir(), "blob-"+strings.Repeat("0", 64)+"-1"), []byte("partial"), 0o600)
	for _, args := range [][]string{{"image", "prune", "--dry-run", "--json"}, {"prune", "--dry-run", "--json"}} {
		items := decode[[]map[string]any](t, strings.Join(args, " "), e.run(args...))
		if len(items) != 1 {
			t.Fatalf("%q: %v, want the leftover", args, items)
		}
		keys(t, "prune --dry-run", items[0], []string{"kind", "name", "path", "size"}, nil)
	}

	aliases := decode[[]map[string]any](t, "aliases --json", e.run("aliases", "--json"))
	if len(aliases) < 10 {
		t.Fatalf("aliases: %v", aliases)
	}
	for _, a := range aliases {
		keys(t, "aliases", a, []string{"name", "ref", "source"}, []string{"description"})
	}

	v := decode[map[string]any](t, "version --json", e.run("version", "--json"))
	keys(t, "version", v, []string{"version", "commit", "go", "platform", "init", "front", "host"}, nil)
	if host, ok := v["host"].(map[string]any); !ok {
		t.Errorf("version: host is %T", v["host"])
	} else {
		keys(t, "version.host", host, []string{"kernel", "userns", "subuid", "subgid", "newuidmap", "overlay", "cgroup", "cgroupControllers", "network"}, nil)
	}

	r := e.run("doctor", "--json")
	rs := decode[[]map[string]any](t, "doctor --json", r)
	want := []string{"userns", "newuidmap", "subids", "runtime-dir", "overlay", "fuse-overlayfs", "filesystem", "cgroup", "dbus", "network", "config", "store", "gpu"}
	failed := false
	for i, x := range rs {
		keys(t, "doctor", x, []string{"check", "status", "message", "hint"}, nil)
		if i < len(want) && x["check"] != want[i] {
			t.Errorf("doctor result %d is %v, want %s", i, x["check"], want[i])
		}
		switch x["status"] {
		case "fail":
			failed = true
		case "pass", "warn":
		default:
			t.Errorf("doctor: status %v", x["status"])
		}
	}
	if len(rs) != len(want) {
		t.Errorf("doctor: %d results, want %d", len(rs), len(want))
	}
	if (r.code == 1) != failed || (r.code != 0 && r.code != 1) {
		t.Errorf("doctor exit %d with failed=%v; want 1 exactly when a check failed", r.code, failed)
	}
}

// doctor on this machine, as the user running the tests: where the test
// user can run boxes (make test provisions it), the checks that make that
// possible pass, and the human output has one line per check.
func TestDoctorHere(t *testing.T) {
	e := newEnv(t)
	r := e.run("doctor")
	t.Logf("devbox doctor (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	lines := 0
	for l := range strings.SplitSeq(r.stdout, "\n") {
		if strings.HasPrefix(l, "pass ") || strings.HasPrefix(l, "warn ") || strings.HasPrefix(l, "fail ") {
			lines++
		}
	}
	if lines != 13 {
		t.Errorf("%d check lines, want 13", lines)
	}
	if !strings.Contains(r.stderr, "passed") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("summary on stderr: %q", r.stderr)
	}
	m, err := rootless.Detect()
	if err != nil || os.Geteuid() == 0 || m.Single() {
		t.Logf("not an unprivileged user with subordinate ids: only the format is checked")
		return
	}
	for _, c := range []string{"userns", "newuidmap", "subids", "overlay", "store"} {
		if !strings.Contains(r.stdout, "pass  "+c+" ") {
			t.Errorf("check %s does not pass for a user who can run boxes:\n%s", c, r.stdout)
		}
	}
}

// Data commands write their data to stdout and nothing to stderr.
func TestStreams(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"aliases"}, {"images"}, {"version"}, {"help", "exit-codes"}, {"completion", "bash"}, {"--version"}} {
		r := e.run(args...)
		if r.code != 0 || r.stdout == "" || r.stderr != "" {
			t.Errorf("devbox %q: exit %d, stdout %d bytes, stderr %q", args, r.code, len(r.stdout), r.stderr)
		}
	}
}
