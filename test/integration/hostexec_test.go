//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// devbox-host in a dev box runs commands on the host: output, stdin,
// exit codes, working directory, signals, and the xdg-open shim.
func TestDevboxHost(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	host, _ := os.Hostname()
	// A fake xdg-open on the host's PATH (the one devbox starts the box
	// with) records what it was asked to open.
	bin := t.TempDir()
	opened := filepath.Join(bin, "opened")
	os.WriteFile(filepath.Join(bin, "xdg-open"), []byte("#!/bin/sh\necho \"$@\" > "+opened+"\n"), 0o755)
	path := []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	e.ok("create", "dev", "--image", "debian", "--hostname", "inbox", "--grace", "30")
	work := filepath.Join(e.home, "w")
	os.MkdirAll(work, 0o755)
	script := `cd "$1"
devbox-host -- hostname
echo piped | devbox-host -- cat
devbox-host -- pwd
cd /tmp && devbox-host -- pwd
devbox-host -- sh -c 'exit 9'; echo "exit=$?"
devbox-host -- no-such-command-here 2>/dev/null; echo "missing=$?"
devbox-host -- sleep 30 & p=$!; sleep 1; kill -TERM $p; wait $p; echo "term=$?"
xdg-open 'https://example.org/a b'; echo "open=$?"
hostname`
	r := e.runEnv(path, "shell", "dev", "--", "sh", "-c", script, "sh", work)
	want := strings.Join([]string{host, "piped", work, e.home, "exit=9", "missing=127", "term=143", "open=0", "inbox"}, "\n")
	if got := lastLines(r.stdout, 9); r.code != 0 || got != want {
		t.Errorf("exit %d\n got %q\nwant %q\nstderr: %s", r.code, got, want, r.stderr)
	}
	if b, err := os.ReadFile(opened); err != nil || string(b) != "https://example.org/a b\n" {
		t.Errorf("xdg-open on the host: %v %q", err, b)
	}
	// DEVBOX_XDG_OPEN=box: the box's own xdg-open.
	e.ok("shell", "--root", "dev", "--", "sh", "-c", "printf '#!/bin/sh\\necho box-open \"$@\"\\n' > /usr/bin/xdg-open && chmod 755 /usr/bin/xdg-open")
	if r := e.ok("shell", "dev", "--", "env", "DEVBOX_XDG_OPEN=box", "xdg-open", "u"); strings.TrimSpace(r.stdout) != "box-open u" {
		t.Errorf("DEVBOX_XDG_OPEN=box: %q %q", r.stdout, r.stderr)
	}
	// Root of the box is not the user on the host: refused.
	if r := e.run("shell", "--root", "dev", "--", "devbox-host", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "refused") {
		t.Errorf("devbox-host as the box's root: exit %d %q", r.code, r.stderr)
	}
	// A process of a sandbox built inside the box (its own user and PID
	// namespaces) sees the socket but is not a process of the box: refused.
	if r := e.run("shell", "dev", "--", "unshare", "-rpf", "devbox-host", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "refused") {
		t.Errorf("devbox-host from a nested PID namespace: exit %d %q", r.code, r.stderr)
	}
	// Nor is one of a sandbox that keeps the box's PID namespace and only
	// unshares the user (and network) namespaces, as bwrap --unshare-user
	// --unshare-net builds for a build without network: through the
	// channel it would run on the host, network and all.
	for _, flags := range []string{"-r", "-rn"} {
		if r := e.run("shell", "dev", "--", "unshare", flags, "devbox-host", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "refused") {
			t.Errorf("devbox-host from a nested user namespace (unshare %s): exit %d %q", flags, r.code, r.stderr)
		}
	}
	// The exit code passes through devbox exec too.
	if r := e.run("exec", "dev", "--", "devbox-host", "--", "sh", "-c", "exit 4"); r.code != 4 {
		t.Errorf("devbox exec … devbox-host: exit %d, want 4 (%s)", r.code, r.stderr)
	}
}

// Sandboxed boxes have no channel to the host: the probe looks for one
// everywhere while a dev box has one, and reaches the dev box's own
// channel from inside it (the control).
func TestEscapeNoHostChannelInSandbox(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	img := probeImage(t, e)
	e.ok("create", "dev", "--image", img, "--grace", "60")
	ctl := e.ok("exec", "dev", "--", "/probe", "hostchan")
	if !strings.Contains(ctl.stdout, "summary: reached=1 ") {
		t.Fatalf("the probe does not reach the dev box's own channel (the control):\n%s", ctl.stdout)
	}
	other := filepath.Join(t.TempDir(), "h")
	os.MkdirAll(other, 0o755)
	e.ok("create", "sb", "--image", img, "--home", other, "--desktop")
	for _, args := range [][]string{
		{"run", "--net", "host", img, "--", "/probe", "hostchan"},
		{"run", img, "--", "/probe", "hostchan"},
		{"exec", "sb", "--", "/probe", "hostchan"},
	} {
		r := e.ok(args...)
		if !strings.Contains(r.stdout, "summary: reached=0 ") {
			t.Errorf("devbox %s: the sandbox reached the host:\n%s", strings.Join(args, " "), r.stdout)
		}
		if r := e.run(append(args[:len(args)-2:len(args)-2], "/bin/sh", "-c", "ls /usr/local/bin/devbox-host /run/devbox 2>&1")...); strings.Contains(r.stdout, "host.sock") || !strings.Contains(r.stdout, "No such file") {
			t.Errorf("devbox %s: devbox-host is there: %q", strings.Join(args, " "), r.stdout)
		}
	}
}
