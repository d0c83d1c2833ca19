//go:build integration

package integration

// Input an image or a user's command line chooses, turned against the
// user: terminal escapes in an image's config, forged build-cache labels,
// image names with ".." segments (docs/security.md, "Hostile images" and
// "Commit, push, save and load").

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushEditedBusybox pushes the test registry's busybox with its config
// edited by edit as repo:tag and returns the reference.
func pushEditedBusybox(t *testing.T, e *env, repo string, edit func(*v1.Config)) string {
	t.Helper()
	bimg := registryBusybox(t, e)
	cf, err := bimg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	edit(&cf.Config)
	img, err := mutate.ConfigFile(bimg, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref := e.registry + "/" + repo
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// hasEscape reports whether s holds a control character a terminal acts
// on (anything but newline and tab, C1 included).
func hasEscape(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f)
	})
}

// TestEscapeImageConfigEscapes: an image whose CMD, ENTRYPOINT, WorkingDir
// and User carry terminal escapes (an OSC that sets the window title, a
// CSI, a C1 CSI) makes devbox fail and warn about them: none of the bytes
// may reach the user's terminal through devbox's own messages.
func TestEscapeImageConfigEscapes(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	const osc, csi, c1 = "\x1b]0;PWNED\x07", "\x1b[31m", "\u009b2J"
	ref := pushEditedBusybox(t, e, "devbox-test/esc:1", func(c *v1.Config) {
		c.Cmd = []string{"/no" + osc + "such" + csi + c1}
		c.WorkingDir = "/w" + osc + "dir" + csi
	})
	e.ok("pull", "-q", ref)
	check := func(what string, r result, named bool) {
		t.Helper()
		if hasEscape(r.stderr) || hasEscape(r.stdout) {
			t.Errorf("%s: a terminal escape of the image reached devbox's output:\nstdout %q\nstderr %q", what, r.stdout, r.stderr)
		}
		if named && !strings.Contains(r.stderr, "PWNED") {
			t.Errorf("%s: the message about the image's command or directory is gone: stdout %q stderr %q", what, r.stdout, r.stderr)
		}
	}
	r := e.run("run", "-T", ref)
	if r.code != 127 {
		t.Errorf("run: exit %d, want 127: %q", r.code, r.stderr)
	}
	check("run", r, true)
	r = e.run("run", "-T", ref, "--", "true")
	check("run -- true (working directory)", r, true)
	home := filepath.Join(e.home, "eschome")
	e.ok("create", "escbox", "--image", ref, "--home", home)
	r = e.run("exec", "-T", "escbox", "--", "true")
	check("exec", r, false)
	r = e.run("shell", "-T", "escbox")
	check("shell", r, false)
	// What the box's agent reports names the command: printed without
	// its escapes too.
	r = e.run("exec", "-T", "escbox", "--", "/no"+osc+"such"+csi)
	if r.code != 127 {
		t.Errorf("exec of a missing command: exit %d %q", r.code, r.stderr)
	}
	check("exec of a missing command", r, true)
	r = e.run("inspect", "escbox")
	if hasEscape(r.stdout) || hasEscape(r.stderr) {
		t.Errorf("inspect: %q %q", r.stdout, r.stderr)
	}
	// A record is input too: an image reference with escapes written
	// into it is listed without them.
	e.ok("stop", "escbox")
	recPath := filepath.Join(e.boxDir("escbox"), "box.json")
	b, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	json.Unmarshal(b, &rec)
	rec["image"] = "docker.io/x" + osc + c1 + ":1"
	b, _ = json.Marshal(rec)
	os.WriteFile(recPath, b, 0o600)
	r = e.run("ls")
	if hasEscape(r.stdout) || hasEscape(r.stderr) || !strings.Contains(r.stdout, "PWNED") {
		t.Errorf("ls of a record with escapes: %q %q", r.stdout, r.stderr)
	}
}

// TestEscapeBuildCacheForgedLabel: the build cache's key is computable by
// anyone who has the box file, so an image committed (or loaded, or
// pulled) under the build's tag with the key as its dev.devbox.build.key
// label must not count as cached: devbox build trusts only the images it
// recorded itself. Before the fix the forged image was "cached" and the
// hook never ran.
func TestEscapeBuildCacheForgedLabel(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	dir := filepath.Join(e.home, "project")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "devbox.toml")
	os.WriteFile(file, []byte("[box.forged]\nimage = \"busybox\"\non_create = [\"echo built-by-devbox > /built\"]\n"), 0o644)
	first, _ := e.build(file)
	if first.Cached || len(first.Key) != 64 {
		t.Fatalf("first build: %+v", first)
	}
	if again, _ := e.build(file); !again.Cached || again.ID != first.ID {
		t.Fatalf("the control: a second build is not cached: %+v", again)
	}
	// The attacker's image under the same tag, with the key as its label.
	e.ok("rmi", first.Ref)
	e.ok("create", "forger", "--image", "busybox", "--home", filepath.Join(e.home, "forgerhome"))
	e.ok("exec", "-T", "--root", "forger", "--", "sh", "-c", "echo forged > /built")
	e.ok("stop", "forger")
	var forged struct{ ID string }
	if err := json.Unmarshal([]byte(e.ok("commit", "--json", "forger", first.Ref, "--change", "LABEL dev.devbox.build.key="+first.Key).stdout), &forged); err != nil {
		t.Fatal(err)
	}
	if got := e.imageConfig(forged.ID).Config.Labels["dev.devbox.build.key"]; got != first.Key {
		t.Fatalf("the forged image's label is %q, want %q", got, first.Key)
	}
	res, r := e.build(file)
	if res.Cached {
		t.Fatalf("a forged label made the build cached: %+v\n%s", res, r.stderr)
	}
	if !strings.Contains(r.stderr, "not built here") {
		t.Errorf("the rebuild does not say why:\n%s", r.stderr)
	}
	if out := e.ok("run", first.Ref, "--", "cat", "/built").stdout; out != "built-by-devbox\n" {
		t.Errorf("the image under %s after the build has /built = %q", first.Ref, out)
	}
	if again, _ := e.build(file); !again.Cached || again.ID != res.ID {
		t.Errorf("the rebuilt image is not cached: %+v", again)
	}
}

// TestImageNameDotDot: image names with "." or ".." path elements (or
// empty ones) would reach a registry as they are on a push; every command
// that takes a new image name or a push destination refuses them with exit
// 125, one line and a hint, before it does any work.
func TestImageNameDotDot(t *testing.T) {
	e := newEnv(t)
	stored := strings.TrimSpace(e.ok("pull", "-q", "busybox").stdout)
	dir := filepath.Join(e.home, "project")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "devbox.toml")
	os.WriteFile(file, []byte("[box.dots]\nimage = \"busybox\"\n"), 0o644)
	dest := e.registry + "/devbox-test/../admin/x:1"
	for _, args := range [][]string{
		{"build", "-t", "team/../other:1", file},
		{"build", "-t", "../../x", file},
		{"build", "--push", dest, file},
		{"commit", "nobox", "team/../other:1"},
		{"commit", "nobox", "team/./other"},
		{"commit", "nobox", "team//other"},
		{"push", stored, dest},
		{"push", stored, e.registry + "/devbox-test/./x:1"},
	} {
		r := e.run(args...)
		if r.code != 125 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "invalid image name") || !strings.Contains(r.stderr, "hint:") {
			t.Errorf("devbox %s: exit %d, stderr %q; want 125 and one line naming the invalid image name with a hint", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if b := e.boxes(); len(b) != 0 {
		t.Errorf("a refused build made boxes: %+v", b)
	}
	// The control: a plain name still works.
	e.ok("build", "-t", "team/dots:1", file)
}

// TestEscapeRunImageConfig: devbox run (box.Manager.Run since session 9)
// of an image whose configuration tries what the kernel or the run's
// plumbing could turn into more than the image asked for: a User that is
// (uid_t)-1 — setresuid(-1) changes nothing, so the command would stay
// root — as uid or gid, a uid the box's namespace does not map, a
// WorkingDir climbing out with "..", an Env entry with a newline and one
// without "=", a 1 MiB Cmd, a bogus StopSignal, ExposedPorts, Volumes and
// Labels. Each either runs as what it names, inside the box, or is
// refused with exit 125 and one line; none runs as root in its place, and
// none reaches the host (the WorkingDir stays in the box's root).
func TestEscapeRunImageConfig(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	for _, c := range []struct {
		name string
		edit func(*v1.Config)
		args []string
		ok   func(r result) bool
	}{
		{"user -1", func(c *v1.Config) { c.User = "4294967295" }, []string{"id", "-u"},
			func(r result) bool { return r.code == 125 && strings.Count(r.stderr, "\n") == 1 }},
		{"group -1", func(c *v1.Config) { c.User = "1000:4294967295" }, []string{"id", "-g"},
			func(r result) bool { return r.code == 125 && strings.Count(r.stderr, "\n") == 1 }},
		{"unmapped uid", func(c *v1.Config) { c.User = "4000000000" }, []string{"id", "-u"},
			func(r result) bool { return r.code != 0 && !strings.Contains(r.stdout, "0\n") }},
		{"workdir dot-dot", func(c *v1.Config) { c.WorkingDir = "/../../../../../.." + e.home }, []string{"sh", "-c", "pwd; ls -a"},
			func(r result) bool { return !strings.Contains(r.stdout, "devbox-canary") }},
		{"env newline", func(c *v1.Config) { c.Env = append(c.Env, "A=one\ntwo=2", "NOEQUALS") }, []string{"sh", "-c", `printf '%s|' "$A"; echo "${two-unset}"`},
			func(r result) bool {
				return r.code == 0 && r.stdout == "one\ntwo=2|unset\n" || r.code == 125 && strings.Count(r.stderr, "\n") == 1
			}},
		{"huge cmd", func(c *v1.Config) { c.Cmd = []string{"echo", strings.Repeat("x", 1<<20)} }, nil,
			func(r result) bool { return r.code != 0 && strings.Count(r.stderr, "\n") == 1 }},
		{"odd fields", func(c *v1.Config) {
			c.StopSignal = "SIGNOPE"
			c.ExposedPorts = map[string]struct{}{"22/tcp": {}, "99999/udp": {}}
			c.Volumes = map[string]struct{}{"/../../home": {}, e.home: {}}
			c.Labels = map[string]string{"dev.devbox.build.key": "x", "\x1b]0;x\x07": "y"}
		}, []string{"sh", "-c", "ls " + e.home + " 2>&1; echo done"},
			func(r result) bool {
				return r.code == 0 && strings.HasSuffix(r.stdout, "done\n") && !strings.Contains(r.stdout, "devbox-canary")
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plantCanary(t, e.home)
			ref := pushEditedBusybox(t, e, "devbox-test/cfg-"+strings.ReplaceAll(c.name, " ", "-")+":1", c.edit)
			e.ok("pull", "-q", ref)
			r := e.run(append([]string{"run", "-T", ref}, c.args...)...)
			t.Logf("exit %d: %.200q %.200q", r.code, r.stdout, r.stderr)
			if !c.ok(r) || hasEscape(r.stderr) {
				t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}
