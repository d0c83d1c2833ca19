//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/test/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const buildFile = `
[box.tool]
image = "debian"
packages = ["less"]
env = { GREETING = "hello from build", PATH = "/opt/tool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
on_create = ["mkdir -p /opt/tool/bin && printf '#!/bin/sh\\necho tool-ok\\n' > /opt/tool/bin/tool && chmod +x /opt/tool/bin/tool",
             "echo \"$GREETING\" > /etc/built-by-hook"]
ports = ["8080:80"]
`

type buildJSON struct {
	Box    string
	Ref    string
	ID     string
	Key    string
	Cached bool
	Pushed string
	Stages []struct {
		Name    string
		Seconds float64
	}
}

func (e *env) build(args ...string) (buildJSON, result) {
	e.t.Helper()
	r := e.ok(append([]string{"build", "--json", "--host-loopback"}, args...)...)
	var res []buildJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 {
		e.t.Fatalf("build --json: %v: %q", err, r.stdout)
	}
	return res[0], r
}

// stagesOf lists the stage names of a build's progress lines on stderr,
// each with a duration.
var stageLine = regexp.MustCompile(`(?m)^devbox: build \S+: (\S+(?: \d+)?)\s+\d+\.\d\ds `)

func stagesOf(stderr string) string {
	var out []string
	for _, m := range stageLine.FindAllStringSubmatch(stderr, -1) {
		out = append(out, m[1])
	}
	return strings.Join(out, ",")
}

// TestBuild: devbox build makes an image of a box file's box in a
// temporary box (packages from the local apt repository, hooks, env),
// leaves no box, keeps your home out; built again it is cached (same
// digest, no box started); an edited hook or --no-cache builds anew; a
// failing hook exits 1, naming the hook, with no box left and nothing
// tagged.
func TestBuild(t *testing.T) {
	e := assembleEnv(t)
	os.WriteFile(filepath.Join(e.home, "home-secret"), []byte("mine\n"), 0o644)
	dir := filepath.Join(e.home, "project")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "devbox.toml")
	os.WriteFile(file, []byte(buildFile), 0o644)

	t0 := time.Now()
	first, r := e.build(file)
	full := time.Since(t0)
	t.Logf("first build's progress:\n%s", r.stderr)
	if first.Box != "tool" || first.Ref != "localhost/tool:latest" || first.Cached || !strings.HasPrefix(first.ID, "sha256:") || len(first.Key) != 64 {
		t.Fatalf("first build: %+v", first)
	}
	if got := stagesOf(r.stderr); got != "pull,create,packages,hook 1,hook 2,commit,remove" {
		t.Errorf("progress stages %q:\n%s", got, r.stderr)
	}
	if !strings.Contains(r.stderr, "ignoring ports") {
		t.Errorf("the ignored ports are not named:\n%s", r.stderr)
	}
	if b := e.boxes(); len(b) != 0 {
		t.Errorf("boxes left after the build: %+v", b)
	}
	// Neither your home's files nor the build box's home (its mount
	// point) are in the image.
	check := fmt.Sprintf(`command -v less; tool; cat /etc/built-by-hook; echo "$GREETING"; `+
		`test -e %q && echo home-in-image; test -e %q && echo home-dir-in-image; grep -rls home-secret /root /home 2>/dev/null; echo end`,
		filepath.Join(e.home, "home-secret"), e.home)
	want := "/usr/bin/less\ntool-ok\nhello from build\nhello from build\nend\n"
	if out := e.ok("run", "tool", "--", "sh", "-c", check).stdout; out != want {
		t.Errorf("devbox run of the built image printed %q, want %q", out, want)
	}
	cfg := e.imageConfig(first.ID)
	if cfg.Config.Labels["dev.devbox.build.key"] != first.Key || !slices.Contains(cfg.Config.Env, "GREETING=hello from build") {
		t.Errorf("image config: %+v", cfg.Config)
	}
	if n := len(cfg.History); n < 3 || cfg.History[n-3].CreatedBy != "devbox build: packages: less" || !cfg.History[n-3].EmptyLayer ||
		!strings.HasPrefix(cfg.History[n-2].CreatedBy, "devbox build: on_create: /bin/sh -c mkdir") || !cfg.History[n-2].EmptyLayer ||
		cfg.History[n-1].CreatedBy != `devbox build: on_create: /bin/sh -c echo "$GREETING" > /etc/built-by-hook` || cfg.History[n-1].EmptyLayer {
		t.Errorf("history: %+v", cfg.History)
	}

	// Again: cached, the same image, no box made (containers/ is not
	// written to).
	boxesDir := filepath.Join(e.root, "containers")
	before, err := os.Stat(boxesDir)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a box made now would change the directory's mtime
	t0 = time.Now()
	again, r := e.build(file)
	cached := time.Since(t0)
	if after, err := os.Stat(boxesDir); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the cached build wrote to %s (%v)", boxesDir, err)
	}
	if !again.Cached || again.ID != first.ID || again.Key != first.Key {
		t.Errorf("second build: %+v, first %+v", again, first)
	}
	if got := stagesOf(r.stderr); got != "pull" || !strings.Contains(r.stderr, "cached") {
		t.Errorf("second build's progress:\n%s", r.stderr)
	}
	t.Logf("full build %v, cached build %v", full, cached)

	// An edited hook builds again.
	editedFile := strings.Replace(buildFile, "/etc/built-by-hook", "/etc/built-by-hook2", 1)
	os.WriteFile(file, []byte(editedFile), 0o644)
	edited, _ := e.build(file)
	if edited.Cached || edited.ID == first.ID || edited.Key == first.Key {
		t.Errorf("build after editing a hook: %+v", edited)
	}
	e.ok("run", "tool", "--", "test", "-e", "/etc/built-by-hook2")
	// --no-cache builds even with the key unchanged; -q prints the ref.
	if r := e.ok("build", "--host-loopback", "--no-cache", "-q", file); r.stdout != "localhost/tool:latest\n" || r.stderr != "" {
		t.Errorf("build --no-cache -q: %q, stderr %q", r.stdout, r.stderr)
	}
	forced, _ := e.build(file)
	if !forced.Cached || forced.ID == edited.ID {
		// The rebuild made a new image (a new creation time) and it is the
		// one now cached.
		t.Errorf("after --no-cache: %+v, before %+v", forced, edited)
	}

	// A failing hook: exit 1, the hook named, no box, nothing tagged.
	os.WriteFile(file, []byte(strings.Replace(buildFile, `"echo \"$GREETING\" > /etc/built-by-hook"`, `"echo half > /etc/half; exit 7"`, 1)), 0o644)
	r = e.run("build", "--host-loopback", "-t", "half:1", file)
	if r.code != 1 || !strings.Contains(r.stderr, "on_create hook 2 (echo half > /etc/half; exit 7) failed: exit 7") || !strings.Contains(r.stderr, "(log: ") {
		t.Errorf("failing hook: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if b := e.boxes(); len(b) != 0 {
		t.Errorf("boxes left after a failed build: %+v", b)
	}
	if out := e.ok("images", "--json").stdout; strings.Contains(out, "half") {
		t.Errorf("a failed build tagged an image: %s", out)
	}
	logPath := filepath.Join(e.home, ".local", "state", "devbox", "build", "tool.log")
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "on_create: echo half") {
		t.Errorf("build log %s: %v\n%s", logPath, err, b)
	}
	if n := len(e.runDirs()); n != 0 {
		t.Errorf("%d runtime directories left", n)
	}

	// --pull always pulls the base again: the same digest, the same key.
	os.WriteFile(file, []byte(editedFile), 0o644)
	if r := e.ok("build", "--host-loopback", "--pull", "always", file); !strings.Contains(r.stderr, "Pulling docker.io/library/debian") || !strings.Contains(r.stdout, "\tcached") {
		t.Errorf("build --pull always: %q\n%s", r.stdout, r.stderr)
	}
	// The cached builds left the failed build's log alone.
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "on_create: echo half") {
		t.Errorf("build log %s after cached builds: %v\n%s", logPath, err, b)
	}
	// --pull never does not pull a missing image.
	never := filepath.Join(dir, "never.toml")
	os.WriteFile(never, []byte("[box.bb]\nimage = \"busybox\"\n"), 0o644)
	if r := e.run("build", "--host-loopback", "--pull", "never", never); r.code != 125 || !strings.Contains(r.stderr, "--pull never") || !strings.Contains(r.stderr, "hint: devbox pull busybox") {
		t.Errorf("build --pull never of a missing image: exit %d, %q", r.code, r.stderr)
	}
	// -t names one image; -b names a box of the file.
	os.WriteFile(file, []byte(buildFile+"\n[box.other]\nimage = \"busybox\"\n"), 0o644)
	if r := e.run("build", "--host-loopback", "-t", "x:1", file); r.code != 125 || !strings.Contains(r.stderr, "hint: choose one with -b BOX") {
		t.Errorf("-t with two boxes: exit %d, %q", r.code, r.stderr)
	}
	if r := e.run("build", "--host-loopback", "-b", "nosuch", file); r.code != 125 || !strings.Contains(r.stderr, "(hint: it has other, tool)") {
		t.Errorf("-b nosuch: exit %d, %q", r.code, r.stderr)
	}
	// A bad box file: 125 with a hint.
	os.WriteFile(file, []byte("[box.tool]\nimage = \"debian\"\npackage = [\"less\"]\n"), 0o644)
	if r := e.run("build", "--host-loopback", file); r.code != 125 || !strings.Contains(r.stderr, "unknown key(s) box.tool.package") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("bad box file: exit %d, %q", r.code, r.stderr)
	}
}

// imageConfig returns the config of stored image id (a manifest digest).
func (e *env) imageConfig(id string) *v1.ConfigFile {
	e.t.Helper()
	st := e.store()
	h, err := v1.NewHash(id)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := st.Manifest(h)
	if err != nil {
		e.t.Fatalf("manifest of %s: %v", id, err)
	}
	cfg, err := st.ConfigFile(m.Config.Digest)
	if err != nil {
		e.t.Fatalf("config of %s: %v", id, err)
	}
	return cfg
}

// runDirs are the runtime directories of this env's boxes that exist.
func (e *env) runDirs() []string {
	var out []string
	ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
	for _, ent := range ents {
		d := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox", ent.Name()[:min(len(ent.Name()), 16)])
		if _, err := os.Stat(d); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// TestBuildPushRunsInPodman: a built image pushed with --push runs in
// podman with its package, hook's file and env.
func TestBuildPushRunsInPodman(t *testing.T) {
	e := assembleEnv(t)
	file := filepath.Join(e.home, "devbox.toml")
	os.WriteFile(file, []byte(buildFile), 0o644)
	dest := fmt.Sprintf("%s/t17/build:%d", e.registry, time.Now().UnixNano())
	res, _ := e.build(file, "-t", "pushed:1", "--push", dest)
	if res.Ref != "localhost/pushed:1" || res.Pushed != dest {
		t.Fatalf("build --push: %+v", res)
	}
	out := podmanRun(t, dest, `command -v less && tool && cat /etc/built-by-hook && echo "$GREETING"`)
	if !strings.HasSuffix(out, "/usr/bin/less\ntool-ok\nhello from build\nhello from build\n") {
		t.Fatalf("podman run printed:\n%s", out)
	}
	if _, err := exec.LookPath("skopeo"); err != nil {
		testutil.Skip(t, "skopeo is not installed (test/provision.sh installs it)")
	}
	sk, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+dest).CombinedOutput()
	if err != nil || !strings.Contains(string(sk), res.ID) {
		t.Errorf("skopeo inspect: %v\n%s\nwant digest %s", err, sk, res.ID)
	}
}

// TestBuildInterrupted: Ctrl-C during a hook ends the build with 130 and
// removes its temporary box; nothing is tagged.
func TestBuildInterrupted(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	file := filepath.Join(e.home, "devbox.toml")
	os.WriteFile(file, []byte("[box.slow]\nimage = \"debian\"\non_create = [\"touch /started; sleep 60\"]\n"), 0o644)
	c := e.cmd("build", "--host-loopback", file)
	var errb strings.Builder
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b := e.boxes(); len(b) == 1 && strings.HasPrefix(b[0].Name, "slow-build-") {
			if r := e.run("exec", "--root", b[0].Name, "test", "-e", "/started"); r.code == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			c.Wait()
			t.Fatalf("the build's hook did not start:\n%s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t0 := time.Now()
	c.Process.Signal(os.Interrupt)
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("interrupted build: %v\n%s", err, errb.String())
	}
	if d := time.Since(t0); d > 20*time.Second {
		t.Errorf("the build took %v to stop", d)
	}
	if b := e.boxes(); len(b) != 0 {
		t.Errorf("boxes left after an interrupted build: %+v", b)
	}
	if out := e.ok("images", "--json").stdout; strings.Contains(out, "slow") {
		t.Errorf("an interrupted build tagged an image: %s", out)
	}
}

// TestBuildKilled: a build killed with SIGKILL cannot clean up; the next
// build removes its temporary box and home, and leaves a build in
// progress alone.
func TestBuildKilled(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	slow := filepath.Join(e.home, "slow.toml")
	os.WriteFile(slow, []byte("[box.slow]\nimage = \"busybox\"\non_create = [\"touch /started; sleep 120\"]\n"), 0o644)
	// start starts a build of slow and returns once its hook runs, with
	// its temporary box's name (not skip's).
	start := func(skip string) (*exec.Cmd, string, string) {
		c := e.cmd("build", "--host-loopback", slow)
		// A file: read while the build runs.
		errf, err := os.CreateTemp(t.TempDir(), "stderr")
		if err != nil {
			t.Fatal(err)
		}
		defer errf.Close()
		c.Stderr = errf
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			for _, b := range e.boxes() {
				if strings.HasPrefix(b.Name, "slow-build-") && b.Name != skip && e.run("exec", "--root", b.Name, "test", "-e", "/started").code == 0 {
					return c, errf.Name(), b.Name
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Process.Kill()
		c.Wait()
		b, _ := os.ReadFile(errf.Name())
		t.Fatalf("the build's hook did not start:\n%s", b)
		return nil, "", ""
	}
	killed, _, name := start("")
	killed.Process.Kill()
	killed.Wait()
	var rec struct{ Home string }
	json.Unmarshal([]byte(e.ok("inspect", name).stdout), &rec)
	if !strings.Contains(filepath.Base(rec.Home), "devbox-build-home-") {
		t.Fatalf("the build box's home is %q", rec.Home)
	}
	// The next build removes the killed build's box and home.
	running, stderr, live := start(name)
	if b, _ := os.ReadFile(stderr); !strings.Contains(string(b), "removing box "+name+", left by a build that was killed") {
		t.Errorf("the next build's stderr:\n%s", b)
	}
	if _, err := os.Stat(rec.Home); err == nil {
		t.Errorf("the killed build's home %s is still there", rec.Home)
	}
	// A build in progress is not swept.
	quick := filepath.Join(e.home, "quick.toml")
	os.WriteFile(quick, []byte("[box.quick]\nimage = \"busybox\"\n"), 0o644)
	if r := e.ok("build", "--host-loopback", quick); strings.Contains(r.stderr, "removing box") {
		t.Errorf("a build during another removed a box:\n%s", r.stderr)
	}
	names := []string{}
	for _, b := range e.boxes() {
		names = append(names, b.Name)
	}
	if len(names) != 1 || names[0] != live {
		t.Errorf("boxes during the build: %q, want only %s", names, live)
	}
	running.Process.Signal(os.Interrupt)
	running.Wait()
	if b := e.boxes(); len(b) != 0 {
		t.Errorf("boxes left: %+v", b)
	}
	if locks, _ := filepath.Glob(filepath.Join(e.root, "locks", "build-*")); len(locks) != 0 {
		t.Errorf("build locks left: %q", locks)
	}
}

// TestBuildLayered: a box built on another box's image (localhost/NAME)
// is built after it, on the new image; a change to the lower box builds
// both again, no change neither.
func TestBuildLayered(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	file := filepath.Join(e.home, "devbox.toml")
	layered := "[box.app]\nimage = \"localhost/base\"\non_create = [\"echo app > /etc/app\"]\n\n" +
		"[box.base]\nimage = \"busybox\"\non_create = [\"echo base1 > /etc/base\"]\n"
	os.WriteFile(file, []byte(layered), 0o644)
	build := func() []buildJSON {
		t.Helper()
		r := e.ok("build", "--host-loopback", "--json", file)
		var res []buildJSON
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 2 || res[0].Box != "base" || res[1].Box != "app" {
			t.Fatalf("build --json: %v: %s", err, r.stdout)
		}
		return res
	}
	first := build()
	if first[0].Cached || first[1].Cached {
		t.Errorf("first build: %+v", first)
	}
	if out := e.ok("run", "localhost/app", "--", "cat", "/etc/base", "/etc/app").stdout; out != "base1\napp\n" {
		t.Errorf("app: %q", out)
	}
	if again := build(); !again[0].Cached || !again[1].Cached || again[1].ID != first[1].ID {
		t.Errorf("unchanged: %+v", again)
	}
	os.WriteFile(file, []byte(strings.Replace(layered, "base1", "base2", 1)), 0o644)
	edited := build()
	if edited[0].Cached || edited[1].Cached || edited[1].ID == first[1].ID {
		t.Errorf("after editing base: %+v", edited)
	}
	if out := e.ok("run", "localhost/app", "--", "cat", "/etc/base", "/etc/app").stdout; out != "base2\napp\n" {
		t.Errorf("app after editing base: %q", out)
	}
}

// TestBuildRecordGoesWithImage: devbox build records the image it built
// under builds/<key> in the store; once that image is removed (rmi, then
// the collector) its record goes too, and image prune removes what was
// planted in builds/ — a link to a file of the user's, a huge file, a
// record of an image that is not stored — as itself, never following or
// reading it whole; a stored image's record stays and still makes the
// build cached. Before, every record outlived its image.
func TestBuildRecordGoesWithImage(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	dir := filepath.Join(e.home, "project")
	os.MkdirAll(dir, 0o755)
	builds := filepath.Join(e.root, "builds")
	records := func() []string {
		ents, _ := os.ReadDir(builds)
		var out []string
		for _, ent := range ents {
			out = append(out, ent.Name())
		}
		return out
	}
	build := func(name string) buildJSON {
		file := filepath.Join(dir, name+".toml")
		os.WriteFile(file, []byte("[box."+name+"]\nimage = \"busybox\"\non_create = [\"echo "+name+" > /built\"]\n"), 0o644)
		res, _ := e.build(file)
		return res
	}
	gone, kept := build("gone"), build("kept")
	if got := records(); len(got) != 2 {
		t.Fatalf("two builds recorded %v", got)
	}
	e.ok("rmi", gone.Ref)
	if got := records(); len(got) != 1 || got[0] != kept.Key {
		t.Errorf("after rmi: records %v, want only %s", got, kept.Key)
	}
	c := plantCanary(t, e.home)
	planted := map[string]func(p string) error{
		strings.Repeat("1", 64): func(p string) error { return os.Symlink(c.path, p) },
		strings.Repeat("2", 64): func(p string) error { return os.WriteFile(p, []byte(gone.ID+"\n"), 0o600) },
		strings.Repeat("3", 64): func(p string) error { return testutil.HugeFile(p, []byte(kept.ID+"\n")) },
		"not-a-key":             func(p string) error { return os.WriteFile(p, []byte(kept.ID+"\n"), 0o600) },
	}
	for name, plant := range planted {
		if err := plant(filepath.Join(builds, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.ok("image", "prune")
	if got := records(); len(got) != 1 || got[0] != kept.Key {
		t.Errorf("after image prune: records %v, want only %s", got, kept.Key)
	}
	c.check(t)
	if again := build("kept"); !again.Cached || again.ID != kept.ID {
		t.Errorf("the stored image's build is no longer cached: %+v", again)
	}
}

// TestEscapeBuildHookHostLoopback: devbox build runs a box file's hooks
// without asking (sandboxed, with a home of its own), so a cloned
// repository's on_create hook must not reach the services on the user's
// 127.0.0.1 (a Docker API on TCP, a database, a dev server). Before, the
// build's box had host loopback and the hook's connection to
// host.devbox.internal:PORT reached a listener on the host's 127.0.0.1.
// --host-loopback lets it (the control: the same hook then connects); a
// box whose packages come from a repository on host.devbox.internal is
// refused without the flag, with the hint.
func TestEscapeBuildHookHostLoopback(t *testing.T) {
	e := assembleEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- struct{}{}
			c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nsecret\n"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := filepath.Join(e.home, "cloned")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "devbox.toml")
	// busybox nc: Debian 12's busybox wget faults with -T, on the host too.
	os.WriteFile(file, []byte(fmt.Sprintf("[box.reach]\nimage = \"busybox\"\non_create = [\"echo hi | nc -w 3 %s %d || true\"]\n", "host.devbox.internal", port)), 0o644)
	reached := func() bool {
		select {
		case <-conns:
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}
	e.ok("build", "--no-cache", file)
	if reached() {
		t.Errorf("a build hook reached a listener on the host's 127.0.0.1 without --host-loopback")
	}
	e.ok("build", "--no-cache", "--host-loopback", file)
	if !reached() {
		t.Errorf("with --host-loopback the hook did not reach the host's 127.0.0.1 (the test proves nothing)")
	}
	os.WriteFile(file, []byte("[box.pkgs]\nimage = \"debian\"\npackages = [\"less\"]\n"), 0o644)
	if r := e.run("build", file); r.code != 125 || !strings.Contains(r.stderr, "hint: devbox build --host-loopback") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("packages from a repository on host.devbox.internal without --host-loopback: exit %d %q, want 125 and the hint", r.code, r.stderr)
	}
	if b := e.boxes(); len(b) != 0 {
		t.Errorf("builds left boxes: %+v", b)
	}
}
