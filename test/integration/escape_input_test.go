//go:build integration

package integration

// Input an image or a user's command line chooses, turned against the
// user: terminal escapes in an image's config, forged build-cache labels,
// image names with ".." segments (docs/security.md, "Hostile images" and
// "Commit, push, save and load").

import (
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
	base, err := name.ParseReference(e.registry+"/library/busybox:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	bimg, err := remote.Image(base)
	if err != nil {
		t.Fatalf("reading busybox from the test registry: %v", err)
	}
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
	r = e.run("inspect", "escbox")
	if hasEscape(r.stdout) || hasEscape(r.stderr) {
		t.Errorf("inspect: %q %q", r.stdout, r.stderr)
	}
}
