//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

	if got := summary(e.ok("assemble", "--trust", file)); got != "alpha\tcreate\nbeta\tcreate" {
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
	r := e.ok("assemble", "--json", "--trust", file)
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
	if r := e.run("assemble", "--trust", file); r.code == 0 || !strings.Contains(r.stderr, "--replace") {
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
	r := e.ok("shell", "--devcontainer="+proj, "--trust", "--", "sh", "-c", `echo "$GREETING"; cat /data/x; touch /data/y 2>/dev/null || echo ro`)
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

// TestDevcontainerTrust: a repository's postCreateCommand runs as you in a
// box that shares your home, so devbox shell --devcontainer asks before it
// runs one it was not told to trust: on a terminal with a y/N prompt that
// names the command, without one it refuses with the hint --trust. The
// answer is remembered for this project and this content; an edited
// command asks again. Before, the command ran unasked.
func TestDevcontainerTrust(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	proj := filepath.Join(e.home, "cloned")
	os.MkdirAll(filepath.Join(proj, ".devcontainer"), 0o755)
	marker := filepath.Join(e.home, "hook-ran")
	write := func(hook string) {
		os.WriteFile(filepath.Join(proj, ".devcontainer", "devcontainer.json"),
			[]byte(`{"image": "debian", "postCreateCommand": "`+hook+` > `+marker+`"}`), 0o644)
	}
	ran := func() string {
		b, _ := os.ReadFile(marker)
		os.Remove(marker)
		return string(b)
	}
	write("echo first")
	// No terminal: refused, nothing made.
	r := e.run("shell", "--devcontainer="+proj, "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "--trust") || !strings.Contains(r.stderr, "echo first") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("without a terminal: exit %d %q, want 125 naming the command and --trust", r.code, r.stderr)
	}
	if got := ran(); got != "" || len(e.boxes()) != 0 {
		t.Fatalf("the untrusted hook ran (%q) or a box was made: %+v", got, e.boxes())
	}
	// On a terminal: the prompt names the command; "n" runs nothing.
	answer := func(a string) (result, string) {
		t.Helper()
		return e.answerPrompt(t, a, "shell", "--devcontainer="+proj, "--", "true")
	}
	r, prompt := answer("n")
	if r.code != 125 || !strings.Contains(prompt, "postCreateCommand: echo first") {
		t.Errorf("answered n: exit %d, prompt %q", r.code, prompt)
	}
	if got := ran(); got != "" {
		t.Fatalf("answered n, the hook ran: %q", got)
	}
	r, prompt = answer("y")
	if r.code != 0 {
		t.Fatalf("answered y: exit %d: %q", r.code, prompt)
	}
	if got := ran(); got != "first\n" {
		t.Errorf("answered y, the hook wrote %q", got)
	}
	// Remembered: no terminal needed for the same content.
	e.ok("shell", "--devcontainer="+proj, "--", "true")
	// Edited (as a git pull would): asked again.
	write("echo second")
	if r := e.run("shell", "--devcontainer="+proj, "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "echo second") {
		t.Errorf("an edited postCreateCommand ran unasked: exit %d %q", r.code, r.stderr)
	}
	if got := ran(); got != "" {
		t.Errorf("the edited hook ran: %q", got)
	}
	e.ok("shell", "--devcontainer="+proj, "--trust", "--", "true")
	if got := ran(); got != "second\n" {
		t.Errorf("--trust: the hook wrote %q", got)
	}
}

// TestAssembleTrust: a box file's hooks run as you (on_create once,
// on_start at every start; in a dev box, with your home) and its exports
// put the box's commands on your PATH, so devbox assemble asks before it
// makes a box that has any, as shell --devcontainer does (one
// implementation): without a terminal it refuses, naming them, with the
// hint --trust; on a terminal "n" runs nothing and "y" runs it; the yes is
// remembered for this file and this content; an added on_start hook or an
// export asks again. A box without any is not asked about, nor are --rm
// and --dry-run. Before, a cloned repository's devbox.toml ran its hooks
// unasked.
func TestAssembleTrust(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	proj := filepath.Join(e.home, "cloned")
	os.MkdirAll(proj, 0o755)
	file := filepath.Join(proj, "devbox.toml")
	marker := filepath.Join(e.home, "hook-ran")
	write := func(extra string) {
		os.WriteFile(file, []byte("[box.hooked]\nimage = \"busybox\"\non_create = [\"echo first > "+marker+"\"]\n"+extra), 0o644)
	}
	ran := func() string {
		b, _ := os.ReadFile(marker)
		os.Remove(marker)
		return string(b)
	}
	write("")
	r := e.run("assemble", file)
	if r.code != 125 || !strings.Contains(r.stderr, "--trust") || !strings.Contains(r.stderr, "on_create: echo first") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("without a terminal: exit %d %q, want 125 naming the hook and --trust", r.code, r.stderr)
	}
	if got := ran(); got != "" || len(e.boxes()) != 0 {
		t.Fatalf("the untrusted hook ran (%q) or a box was made: %+v", got, e.boxes())
	}
	// --dry-run and --rm run nothing: not asked.
	if r := e.ok("assemble", "--dry-run", file); strings.TrimSpace(r.stdout) != "hooked\tcreate" {
		t.Errorf("--dry-run printed %q", r.stdout)
	}
	e.ok("assemble", "--rm", file)

	r, prompt := e.answerPrompt(t, "n", "assemble", file)
	if r.code != 125 || !strings.Contains(prompt, "on_create: echo first") || !strings.Contains(prompt, "shares your home") {
		t.Errorf("answered n: exit %d, prompt %q", r.code, prompt)
	}
	if got := ran(); got != "" || len(e.boxes()) != 0 {
		t.Fatalf("answered n, the hook ran (%q) or a box was made: %+v", got, e.boxes())
	}
	r, prompt = e.answerPrompt(t, "y", "assemble", file)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "hooked\tcreate" {
		t.Fatalf("answered y: exit %d %q: %q", r.code, r.stdout, prompt)
	}
	if got := ran(); got != "first\n" {
		t.Errorf("answered y, the hook wrote %q", got)
	}
	id := e.snapRecord("hooked").ID
	// Remembered: no terminal needed for the same content.
	e.ok("assemble", file)
	// An added start hook, an added export: asked again, the box kept.
	for _, extra := range []string{
		"on_start = [\"echo started > " + marker + "\"]\n",
		"export = { bin = [\"/bin/busybox\"] }\n",
	} {
		write(extra)
		r := e.run("assemble", file)
		if r.code != 125 || !strings.Contains(r.stderr, strings.SplitN(extra, " ", 2)[0]) || !strings.Contains(r.stderr, "--trust") {
			t.Errorf("%s: ran unasked: exit %d %q", extra, r.code, r.stderr)
		}
		if got := ran(); got != "" || e.snapRecord("hooked").ID != id {
			t.Errorf("%s: the box was rebuilt or a hook ran: %q", extra, got)
		}
	}
	if _, err := os.Lstat(filepath.Join(e.home, ".local", "bin", "busybox")); err == nil {
		t.Error("the untrusted export was made")
	}
	r = e.ok("assemble", "--trust", file)
	if !strings.Contains(r.stdout, "replace") || ran() != "first\n" {
		t.Errorf("--trust: %q", r.stdout)
	}
	if _, err := os.Lstat(filepath.Join(e.home, ".local", "bin", "busybox")); err != nil {
		t.Errorf("--trust: no export: %v", err)
	}
	// Nothing to run, nothing asked.
	os.WriteFile(file, []byte("[box.plain]\nimage = \"busybox\"\n"), 0o644)
	e.ok("assemble", file)
}

// answerPrompt runs devbox with args on a pty (stdin and stderr), waits
// for its [y/N] prompt, answers a and returns how it ended (stdout
// apart) and everything it wrote on the terminal.
func (e *env) answerPrompt(t *testing.T, a string, args ...string) (result, string) {
	t.Helper()
	m, s := openPTY(t)
	defer m.Close()
	c := e.cmd(args...)
	var out bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = s, &out, s
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var seen []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(seen, []byte("[y/N]")) {
		m.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, err := m.Read(buf)
		seen = append(seen, buf[:n]...)
		if err != nil {
			t.Fatalf("no prompt: %v: %q", err, seen)
		}
	}
	m.Write([]byte(a + "\n"))
	// Drain what follows (a full pty would block devbox) until it
	// has exited and its last words are read.
	exited := make(chan struct{})
	drained := make(chan []byte)
	go func() {
		var rest []byte
		b := make([]byte, 4096)
		for {
			m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := m.Read(b)
			rest = append(rest, b[:n]...)
			if err != nil && !os.IsTimeout(err) {
				break
			}
			if err != nil {
				select {
				case <-exited:
					drained <- rest
					return
				default:
				}
			}
		}
		drained <- rest
	}()
	err := c.Wait()
	close(exited)
	seen = append(seen, <-drained...)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), code: code}, string(seen)
}

// TestEscapeBoxFileExposesUnasked: a cloned repository's devbox.toml
// without any hook publishes a box's port on every interface, or puts the
// box on the host's network; before, devbox assemble did so unasked and a
// service in the box was reachable from the café's Wi-Fi. Now it asks, as
// for hooks (without a terminal it refuses, naming what would be exposed),
// while a port on loopback is not asked about.
func TestEscapeBoxFileExposesUnasked(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	proj := filepath.Join(e.home, "exposer")
	os.MkdirAll(proj, 0o755)
	file := filepath.Join(proj, "devbox.toml")
	for _, c := range []struct{ box, want string }{
		{"[box.wide]\nimage = \"busybox\"\nports = [\"0.0.0.0:18022:22\"]\n", "port 0.0.0.0:18022:22"},
		{"[box.hostnet]\nimage = \"busybox\"\nnetwork = \"host\"\n", "network host"},
	} {
		os.WriteFile(file, []byte(c.box), 0o644)
		r := e.run("assemble", file)
		if r.code != 125 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "--trust") {
			t.Errorf("%q without a terminal: exit %d %q, want 125 naming %q and --trust", c.box, r.code, r.stderr, c.want)
		}
		if b := e.boxes(); len(b) != 0 {
			t.Fatalf("%q: a box was made unasked: %+v", c.box, b)
		}
	}
	os.WriteFile(file, []byte("[box.local]\nimage = \"busybox\"\nports = [\"18023:23\"]\n"), 0o644)
	if r := e.ok("assemble", file); strings.TrimSpace(r.stdout) != "local\tcreate" {
		t.Errorf("a loopback port: %q", r.stdout)
	}
}
