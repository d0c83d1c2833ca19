//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// assembleEnv is newEnv with the local apt repository as the repository
// of box files' packages (and first-start provisioning off).
func assembleEnv(t *testing.T) *env {
	repo := aptRepo(t)
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	p := filepath.Join(e.config, "devbox", "config.toml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(b, fmt.Sprintf("[provision.repos]\napt = %q\n", repo)...), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

const boxFile = `
[box.alpha]
image = "debian"
packages = ["less"]
on_create = ["echo created > /etc/created"]
on_start = ["echo start >> /etc/starts"]
export = { bin = ["/usr/bin/less"] }

[box.beta]
image = "debian"
packages = ["procps"]
on_create = ["touch /etc/beta"]
`

// TestAssemble: a box file with two boxes (packages from the local apt
// repository, hooks, an export) is made; run again, nothing changes;
// editing one box's package list rebuilds only that box; --rm removes
// both and their exports.
func TestAssemble(t *testing.T) {
	e := assembleEnv(t)
	dir := filepath.Join(e.home, "project")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "devbox.toml")
	os.WriteFile(file, []byte(boxFile), 0o644)
	summary := func(r result) string { return strings.TrimSpace(r.stdout) }

	if got := summary(e.ok("assemble", file)); got != "alpha\tcreate\nbeta\tcreate" {
		t.Fatalf("first assemble printed %q", got)
	}
	if out := e.ok("exec", "alpha", "sh", "-c", "cat /etc/created /etc/starts; command -v less").stdout; out != "created\nstart\n/usr/bin/less\n" {
		t.Errorf("alpha: %q", out)
	}
	e.ok("exec", "beta", "sh", "-c", "test -e /etc/beta && command -v ps")
	launcher := filepath.Join(e.home, ".local", "bin", "less")
	if _, err := os.Stat(launcher); err != nil {
		t.Errorf("alpha's export: %v", err)
	}
	ids := map[string]string{}
	for _, n := range []string{"alpha", "beta"} {
		ids[n] = e.snapRecord(n).ID
	}

	if got := summary(e.ok("assemble", file)); got != "alpha\tunchanged\nbeta\tunchanged" {
		t.Errorf("second assemble printed %q", got)
	}
	// The on_start hook runs at every start.
	e.ok("stop", "alpha")
	if out := e.ok("exec", "alpha", "cat", "/etc/starts").stdout; out != "start\nstart\n" {
		t.Errorf("on_start after a restart: %q", out)
	}

	os.WriteFile(file, []byte(strings.Replace(boxFile, `["less"]`, `["less", "sudo"]`, 1)), 0o644)
	r := e.ok("assemble", "--json", file)
	var res []struct {
		Name, Action string
		Changes      []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 2 {
		t.Fatalf("assemble --json: %v: %s", err, r.stdout)
	}
	if res[0].Action != "replace" || strings.Join(res[0].Changes, ",") != "packages" || res[1].Action != "unchanged" {
		t.Errorf("after editing alpha's packages: %+v", res)
	}
	if !strings.Contains(r.stderr, "rebuilding (packages changed)") {
		t.Errorf("no summary of the rebuild on stderr: %q", r.stderr)
	}
	if e.snapRecord("alpha").ID == ids["alpha"] || e.snapRecord("beta").ID != ids["beta"] {
		t.Error("the rebuild did not replace exactly alpha")
	}
	e.ok("exec", "alpha", "sh", "-c", "command -v sudo && test -e /etc/created")

	if got := summary(e.ok("assemble", "--rm", file)); got != "alpha\tremove\nbeta\tremove" {
		t.Errorf("--rm printed %q", got)
	}
	if len(e.boxes()) != 0 {
		t.Errorf("boxes left: %+v", e.boxes())
	}
	if _, err := os.Stat(launcher); err == nil {
		t.Error("--rm left alpha's export")
	}
	// A box of the same name made by hand is not assemble's to replace.
	e.ok("create", "beta", "--image", "busybox")
	if r := e.run("assemble", file); r.code == 0 || !strings.Contains(r.stderr, "--replace") {
		t.Errorf("assemble over a hand-made box: exit %d %q", r.code, r.stderr)
	}
}

// TestDevcontainerShell: the devcontainer.json subset of a project makes
// its box (image, containerEnv, remoteUser, forwardPorts,
// postCreateCommand, mounts), the rest is named as ignored.
func TestDevcontainerShell(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	proj := filepath.Join(e.home, "My Project")
	os.MkdirAll(filepath.Join(proj, ".devcontainer"), 0o755)
	os.MkdirAll(filepath.Join(proj, "data"), 0o755)
	os.WriteFile(filepath.Join(proj, "data", "x"), []byte("bound\n"), 0o644)
	os.WriteFile(filepath.Join(proj, ".devcontainer", "devcontainer.json"), []byte(`{
	// comments and trailing commas, as editors write them
	"image": "debian",
	"containerEnv": { "GREETING": "hi" },
	"remoteUser": "vscode",
	"forwardPorts": [18080],
	"postCreateCommand": "id -u > \"${localWorkspaceFolder}/created-by\"",
	"mounts": ["source=${localWorkspaceFolder}/data,target=/data,type=bind,readonly"],
	"features": {},
}`), 0o644)
	r := e.ok("shell", "--devcontainer="+proj, "--", "sh", "-c", `echo "$GREETING"; cat /data/x; touch /data/y 2>/dev/null || echo ro`)
	if r.stdout != "hi\nbound\nro\n" {
		t.Errorf("session printed %q", r.stdout)
	}
	for _, w := range []string{"ignored: features", `remoteUser "vscode"`} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q: %s", w, r.stderr)
		}
	}
	if b, err := os.ReadFile(filepath.Join(proj, "created-by")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getuid()) {
		t.Errorf("postCreateCommand did not run as you: %q, %v", b, err)
	}
	var rec struct {
		Publish []string `json:"publish"`
		Name    string   `json:"name"`
	}
	json.Unmarshal([]byte(e.ok("inspect", "my-project").stdout), &rec)
	if len(rec.Publish) != 1 || rec.Publish[0] != "18080:18080" {
		t.Errorf("forwardPorts: %+v", rec)
	}
	// Again: the same box, nothing rebuilt.
	os.Remove(filepath.Join(proj, "created-by"))
	e.ok("shell", "--devcontainer="+proj, "--", "true")
	if _, err := os.Stat(filepath.Join(proj, "created-by")); err == nil {
		t.Error("the unchanged box was rebuilt")
	}
}
