//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/test/testutil"
)

type commitJSON struct {
	Ref    string `json:"ref"`
	ID     string `json:"id"`
	DiffID string `json:"diffID"`
	Layer  string `json:"layer"`
}

func (e *env) commit(args ...string) commitJSON {
	e.t.Helper()
	r := e.ok(append([]string{"commit", "--json"}, args...)...)
	var c commitJSON
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || c.DiffID == "" {
		e.t.Fatalf("commit --json: %v: %q", err, r.stdout)
	}
	return c
}

// changedBox makes a dev box of debian with a file installed, a file of
// the image deleted, a directory made opaque and a file in the home, then
// stops it. It returns the box's home path and user name inside.
func changedBox(t *testing.T, e *env, name string) (string, string) {
	e.stopBoxesAtCleanup()
	e.ok("create", name, "--image", "debian")
	e.ok("exec", "--root", name, "sh", "-c",
		"echo devbox-commit > /usr/local/share/committed.txt && rm /etc/debian_version && "+
			"rm -rf /etc/apt/apt.conf.d && mkdir /etc/apt/apt.conf.d && echo mine > /etc/apt/apt.conf.d/99mine && "+
			"mkdir -p /opt/c && echo y > /opt/c/f && ln /opt/c/f /opt/c/g && ln -s /etc/shadow /opt/c/l")
	home := strings.TrimSpace(e.ok("exec", name, "sh", "-c", "echo secret > \"$HOME/home-file\" && echo \"$HOME\"").stdout)
	user := strings.TrimSpace(e.ok("exec", name, "id", "-un").stdout)
	if home == "" || user == "" || user == "root" {
		t.Fatalf("home %q, user %q in the box", home, user)
	}
	e.ok("stop", name)
	return home, user
}

// imageChecks is a shell script that fails unless an image committed from
// changedBox is right: the change in, the deletions as whiteouts, the home
// and devbox's account edits and mount points out.
func imageChecks(home, user string) string {
	return fmt.Sprintf(`set -e
grep -qx devbox-commit /usr/local/share/committed.txt
test ! -e /etc/debian_version
test "$(ls /etc/apt/apt.conf.d)" = 99mine
test "$(cat /opt/c/g)" = y
test "$(readlink /opt/c/l)" = /etc/shadow
test ! -e %[1]q
if grep -q '^%[2]s:' /etc/passwd /etc/shadow /etc/group; then echo "account in the image"; exit 1; fi
test ! -e /etc/sudoers.d/devbox-%[2]s
test ! -e /usr/local/bin/devbox-host
test ! -e /usr/local/bin/xdg-open
test ! -e /run/devbox
echo image-ok
`, home, user)
}

func podmanEnv(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		testutil.Skip(t, "podman is not installed (test/provision.sh installs it)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"), 0o644)
	storage := filepath.Join(dir, "storage.conf")
	os.WriteFile(storage, []byte(fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "graph"), filepath.Join(dir, "run"))), 0o644)
	penv := append(os.Environ(), "CONTAINERS_CONF="+conf, "CONTAINERS_STORAGE_CONF="+storage)
	t.Cleanup(func() {
		// Its storage belongs to subordinate ids.
		c := exec.Command("podman", "unshare", "rm", "-rf", filepath.Join(dir, "graph"), filepath.Join(dir, "run"))
		c.Env = penv
		c.Run()
	})
	return penv
}

// TestCommitPushRunsInPodman commits a changed box, pushes it to the test
// registry, and runs it with podman; skopeo sees the same image.
func TestCommitPushRunsInPodman(t *testing.T) {
	e := newEnv(t)
	home, user := changedBox(t, e, "cm")
	ref := fmt.Sprintf("%s/t17/commit:%d", e.registry, time.Now().UnixNano())
	c := e.commit("cm", ref, "-m", "the build tools", "-a", "Tester <t@example.com>")
	if c.Ref != ref {
		t.Fatalf("committed as %q, want %q", c.Ref, ref)
	}
	// Nothing changed: the same layer, also after a start (which rewrites
	// the account files in /etc).
	again := e.commit("cm", ref+"-again")
	if again.DiffID != c.DiffID || again.Layer != c.Layer {
		t.Errorf("committing an unchanged box twice: diff_id %s then %s, blob %s then %s", c.DiffID, again.DiffID, c.Layer, again.Layer)
	}
	time.Sleep(1100 * time.Millisecond) // a new second for every mtime a start would set
	e.ok("exec", "cm", "true")
	if r := e.run("commit", "cm", ref+"-running"); r.code != 125 || !strings.Contains(r.stderr, "devbox stop cm") {
		t.Errorf("commit of a running box: exit %d, %q", r.code, r.stderr)
	}
	e.ok("stop", "cm")
	if restarted := e.commit("cm", ref+"-again"); restarted.DiffID != c.DiffID {
		t.Errorf("committing an unchanged box after a start: diff_id %s, then %s", c.DiffID, restarted.DiffID)
	}
	// The store's image runs in devbox, too.
	if r := e.ok("run", ref, "--", "sh", "-c", imageChecks(home, user)); !strings.Contains(r.stdout, "image-ok") {
		t.Errorf("devbox run of the committed image: %q", r.stdout)
	}
	if r := e.ok("push", ref); strings.TrimSpace(r.stdout) != ref {
		t.Errorf("push printed %q", r.stdout)
	}

	if _, err := exec.LookPath("skopeo"); err != nil {
		testutil.Skip(t, "skopeo is not installed (test/provision.sh installs it)")
	}
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var info struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Digest != c.ID || len(info.Layers) < 2 || info.Layers[len(info.Layers)-1] != c.Layer {
		t.Errorf("skopeo inspect: %v\n%s\nwant digest %s, top layer %s", err, out, c.ID, c.Layer)
	}
	out, err = exec.Command("skopeo", "inspect", "--config", "--tls-verify=false", "docker://"+ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect --config: %v\n%s", err, out)
	}
	var cfg struct {
		Author  string
		History []struct {
			CreatedBy string `json:"created_by"`
			Comment   string
		}
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	json.Unmarshal(out, &cfg)
	last := len(cfg.History) - 1
	if cfg.Author != "Tester <t@example.com>" || last < 0 || cfg.History[last].Comment != "the build tools" ||
		cfg.History[last].CreatedBy != "devbox commit cm" || cfg.RootFS.DiffIDs[len(cfg.RootFS.DiffIDs)-1] != c.DiffID {
		t.Errorf("config: %s", out)
	}

	if out := podmanRun(t, ref, imageChecks(home, user)); !strings.Contains(out, "image-ok") {
		t.Fatalf("podman run printed:\n%s", out)
	}
}

// podmanRun pulls ref from the test registry with podman and runs script
// in it with sh -c, without network; it returns the output.
func podmanRun(t *testing.T, ref, script string) string {
	t.Helper()
	penv := podmanEnv(t)
	args := []string{"run", "--rm", "--tls-verify=false", "--network", "none", ref, "sh", "-c", script}
	if _, err := exec.LookPath("runc"); err == nil {
		// crun refuses this machine's hybrid cgroup hierarchy; runc does not.
		args = append([]string{"--runtime", "runc"}, args...)
	}
	pull := exec.Command("podman", "pull", "--tls-verify=false", ref)
	pull.Env = penv
	if out, err := pull.CombinedOutput(); err != nil {
		t.Fatalf("podman pull: %v\n%s", err, out)
	}
	pc := exec.Command("podman", args...)
	pc.Env = penv
	out, err := pc.CombinedOutput()
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	return string(out)
}

// TestSaveLoadRoundTrip saves a committed image, loads it into an empty
// store (same digest, runs), and refuses a damaged archive.
func TestSaveLoadRoundTrip(t *testing.T) {
	e := newEnv(t)
	home, user := changedBox(t, e, "sv")
	c := e.commit("sv", "sv:1")
	if c.Ref != "localhost/sv:1" {
		t.Fatalf("committed as %q, want localhost/sv:1", c.Ref)
	}
	// The committed image is an index entry like any other: with its box
	// gone, the collector keeps its layers and the store verifies.
	e.ok("rm", "-f", "sv")
	e.ok("image", "prune")
	e.ok("verify")
	archive := filepath.Join(t.TempDir(), "sv.tar")
	// The short name given to commit names the image for run and create.
	e.ok("run", "sv:1", "--", "test", "-f", "/usr/local/share/committed.txt")
	e.ok("create", "again", "--image", "sv:1")
	if r := e.ok("exec", "again", "cat", "/usr/local/share/committed.txt"); !strings.Contains(r.stdout, "devbox-commit") {
		t.Errorf("a box of sv:1: %q", r.stdout)
	}
	e.ok("save", "sv:1", "-o", archive)
	other := filepath.Join(t.TempDir(), "again.tar")
	e.ok("save", "localhost/sv:1", "-o", other)
	a, _ := os.ReadFile(archive)
	b, _ := os.ReadFile(other)
	if string(a) != string(b) {
		t.Error("saving the same image twice gave different archives")
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		if out, err := exec.Command("skopeo", "inspect", "oci-archive:"+archive).CombinedOutput(); err != nil || !strings.Contains(string(out), c.ID) {
			t.Errorf("skopeo inspect oci-archive: %v\n%s", err, out)
		}
	}

	e2 := newEnv(t)
	r := e2.ok("load", "-i", archive)
	if strings.TrimSpace(r.stdout) != "localhost/sv:1" {
		t.Errorf("load printed %q", r.stdout)
	}
	var imgs []struct{ Ref, ID string }
	json.Unmarshal([]byte(e2.ok("images", "--json").stdout), &imgs)
	if len(imgs) != 1 || imgs[0].ID != c.ID {
		t.Fatalf("after load: %+v, want %s", imgs, c.ID)
	}
	if r := e2.ok("run", "localhost/sv:1", "--", "sh", "-c", imageChecks(home, user)); !strings.Contains(r.stdout, "image-ok") {
		t.Errorf("devbox run of the loaded image: %q", r.stdout)
	}
	e2.ok("load", "-i", archive, "renamed:2")

	// A damaged blob fails the load as it would fail a pull, and leaves
	// nothing tagged.
	e3 := newEnv(t)
	bad := filepath.Join(t.TempDir(), "bad.tar")
	damaged := append([]byte{}, a...)
	damaged[len(damaged)/2] ^= 0xff // in the base layer's blob
	os.WriteFile(bad, damaged, 0o644)
	if r := e3.run("load", "-i", bad); r.code != 125 || !strings.Contains(r.stderr, "devbox: loading") {
		t.Errorf("load of a damaged archive: exit %d, %q", r.code, r.stderr)
	}
	// Not an OCI archive.
	notOCI := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(notOCI, make([]byte, 10240), 0o644)
	if r := e3.run("load", "-i", notOCI); r.code != 125 || !strings.Contains(r.stderr, "not an OCI archive") {
		t.Errorf("load of an empty tar: exit %d, %q", r.code, r.stderr)
	}
	if r := e3.ok("images", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("images after failed loads: %s", r.stdout)
	}
}

// TestCommitChange: --change instructions set the committed image's
// config, and devbox run of the image uses them; a bad one is refused
// before anything is committed.
func TestCommitChange(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "ch", "--image", "busybox")
	e.ok("exec", "--root", "ch", "sh", "-c", `mkdir -p /srv/app && printf '%s\n' '#!/bin/sh' 'echo "args:$*"; echo "cwd:$(pwd)"; echo "env:$GREETING"; id -u' > /usr/local/bin/show && chmod 755 /usr/local/bin/show`)
	e.ok("stop", "ch")
	c := e.commit("ch", "ch:1", "--change", `ENTRYPOINT ["/usr/local/bin/show"]`, "--change", `CMD ["default-arg"]`,
		"--change", `ENV GREETING="hi there"`, "--change", "WORKDIR /srv/app", "--change", "USER 1234", "--change", "label team=core")
	if out := e.ok("run", "ch:1").stdout; out != "args:default-arg\ncwd:/srv/app\nenv:hi there\n1234\n" {
		t.Errorf("devbox run ch:1 printed %q", out)
	}
	if out := e.ok("run", "ch:1", "--", "given").stdout; !strings.HasPrefix(out, "args:given\n") {
		t.Errorf("devbox run ch:1 -- given printed %q", out)
	}
	cfg := e.imageConfig(c.ID)
	if cfg.Config.Labels["team"] != "core" || cfg.Config.User != "1234" || cfg.Config.WorkingDir != "/srv/app" {
		t.Errorf("config: %+v", cfg.Config)
	}
	// An ENTRYPOINT alone clears the image's CMD (busybox's is sh); the
	// shell form runs with /bin/sh -c.
	e.commit("ch", "ch:2", "--change", `ENTRYPOINT ["/usr/local/bin/show"]`)
	if out := e.ok("run", "ch:2").stdout; !strings.HasPrefix(out, "args:\n") {
		t.Errorf("devbox run ch:2 printed %q", out)
	}
	e.commit("ch", "ch:3", "--change", `CMD echo "shell form" $HOME`)
	if out := e.ok("run", "ch:3").stdout; out != "shell form /root\n" {
		t.Errorf("devbox run ch:3 printed %q", out)
	}
	for _, bad := range []string{"EXPOSE 80", `CMD ["x", 1]`, "ENV A", "USER"} {
		if r := e.run("commit", "ch", "ch:bad", "--change", bad); r.code != 125 || !strings.Contains(r.stderr, "devbox: invalid --change") || !strings.Contains(r.stderr, "hint") {
			t.Errorf("--change %q: exit %d, %q", bad, r.code, r.stderr)
		}
	}
	if out := e.ok("images", "--json").stdout; strings.Contains(out, "ch:bad") {
		t.Errorf("a refused commit tagged an image: %s", out)
	}
}
