//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Files devbox writes in a box's directory and in locks/ are opened by
// name: a link planted there (by a dev box, which writes the store through
// the home it shares when the store is under it, or by anything else that
// writes the store) must not lead the write to a file outside the store.
// The box's first start writes spec.json.tmp and provisions it:
// provision.log (which the box's package manager fills) and
// provision.json.tmp are written, under locks/provision-<id>.lock.
func TestEscapeStoreBoxDirLinks(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	p := filepath.Join(e.config, "devbox", "config.toml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Provisioning on (busybox has no package manager: the probe runs,
	// its output goes to the log, the state is saved).
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), "auto = false", "auto = true", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(filepath.Dir(e.home), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	logC, jsonC, recC, specC := plantCanary(t, outside), plantCanary(t, outside), plantCanary(t, outside), plantCanary(t, outside)
	fresh := filepath.Join(outside, "created-by-a-lock")
	// The image store's lock files are made 0666 (its helpers' root is
	// another uid): through a link, that would be a file of the user's.
	private := plantCanary(t, outside)
	if err := os.Chmod(private.path, 0o600); err != nil {
		t.Fatal(err)
	}

	e.ok("create", "victim", "--image", "busybox")
	dir := e.boxDir("victim")
	id := filepath.Base(dir)
	for link, target := range map[string]string{
		filepath.Join(dir, "provision.log"):                     logC.path,
		filepath.Join(dir, "provision.json.tmp"):                jsonC.path,
		filepath.Join(dir, "box.json.tmp"):                      recC.path,
		filepath.Join(dir, "spec.json.tmp"):                     specC.path,
		filepath.Join(e.root, "locks", "provision-"+id+".lock"): fresh,
		filepath.Join(e.root, "locks", "export-"+id+".lock"):    fresh,
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(e.root, "locks", "store.lock"))
	if err := os.Symlink(private.path, filepath.Join(e.root, "locks", "store.lock")); err != nil {
		t.Fatal(err)
	}
	r := e.run("shell", "victim", "--", "echo", "in")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "in" || !strings.Contains(r.stderr, "no package manager") {
		t.Errorf("first shell: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	e.run("export", "victim", "--list")
	e.ok("image", "prune")
	if fi, err := os.Stat(private.path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s through a store.lock link: %v %v, want mode 0600", private.path, fi.Mode(), err)
	}
	for _, c := range []fileCanary{logC, jsonC, recC, specC, private} {
		c.check(t)
	}
	if _, err := os.Lstat(fresh); err == nil {
		t.Errorf("a lock link created %s", fresh)
	}
	for _, f := range []string{"provision.log", "provision.json", "spec.json"} {
		if fi, err := os.Lstat(filepath.Join(dir, f)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s after provisioning: %v %v", f, fi, err)
		}
	}
	if st := e.provisionState("victim"); st.Provision == nil || st.Provision.Problem == "" {
		t.Errorf("provisioning state not saved: %+v", st.Provision)
	}
}

// exports.json is read by export --list, unexport and rm: a link to
// /dev/zero (or a fifo) planted as it must not make them read forever (or
// until the OOM killer picks something of the user's), and an item with
// terminal escapes is not printed.
func TestEscapeStoreExportsRecord(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "dev", "--image", "busybox")
	dir := e.boxDir("dev")
	rec := filepath.Join(dir, "exports.json")
	timed := func(args ...string) result {
		t.Helper()
		return e.within(t, 20*time.Second, args...)
	}
	if err := os.Symlink("/dev/zero", rec); err != nil {
		t.Fatal(err)
	}
	if r := timed("export", "dev", "--list"); r.code == 0 || !strings.Contains(r.stderr, "exports.json") {
		t.Errorf("--list of a linked record: exit %d, stderr %q", r.code, r.stderr)
	}
	os.Remove(rec)
	esc := `{"version":1,"items":[{"kind":"bin","name":"rg","source":"/usr/bin/rg","path":"/x/\u001b]0;owned\u0007rg"}]}`
	os.WriteFile(rec, []byte(esc), 0o600)
	if r := timed("export", "dev", "--list"); r.code == 0 || strings.Contains(r.stdout+r.stderr, "\x1b") {
		t.Errorf("--list of a record with an escape: exit %d, stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	os.Remove(rec)
	if err := unix.Mkfifo(rec, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := timed("rm", "-f", "dev"); r.code != 0 || !strings.Contains(r.stderr, "exports.json") {
		t.Errorf("rm with a fifo as exports.json: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Lstat(dir); err == nil {
		t.Errorf("%s is still there", dir)
	}
}

// TestEscapeStoreAssembleLogLink: devbox assemble writes a box's package
// managers' and hooks' output to assemble.log in its box directory,
// opening it again for each step. A dev box whose store is under the home
// it shares (the default, ~/.local/share/devbox) can replace that file
// by a link between two steps, from its first on_create hook (code of the
// image's), to a file of the user's outside the home; the next step's
// output, which the box chooses, must not be appended there.
func TestEscapeStoreAssembleLogLink(t *testing.T) {
	e := newEnv(t)
	// The store under the home, as by default.
	e.data = filepath.Join(e.home, ".local", "share")
	e.root = filepath.Join(e.data, "devbox")
	if err := os.MkdirAll(e.data, 0o700); err != nil {
		t.Fatal(err)
	}
	e.stopBoxesAtCleanup()
	outside := filepath.Join(filepath.Dir(e.home), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	c := plantCanary(t, outside)
	file := filepath.Join(t.TempDir(), "devbox.toml")
	bf := fmt.Sprintf(`[box.victim]
image = "busybox"
on_create = ["ln -sf %s %s/containers/*/assemble.log", "echo devbox-written-by-the-box"]
`, c.path, e.root)
	if err := os.WriteFile(file, []byte(bf), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run("assemble", "--trust", file)
	t.Logf("assemble: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	c.check(t)
	if fi, err := os.Lstat(filepath.Join(e.boxDir("victim"), "assemble.log")); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		b, _ := os.ReadFile(filepath.Join(e.boxDir("victim"), "assemble.log"))
		if !strings.Contains(string(b), "devbox-written-by-the-box") {
			t.Errorf("assemble.log lacks the second hook's output:\n%s", b)
		}
	}
}

// within runs devbox with args and fails t when it is still running after
// d (then it is killed): for commands fed a planted fifo or /dev/zero.
func (e *env) within(t *testing.T, d time.Duration, args ...string) result {
	t.Helper()
	c := e.cmd(args...)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return result{out.String(), errb.String(), code}
	case <-time.After(d):
		c.Process.Kill()
		<-done
		t.Fatalf("devbox %v still reading after %v", args, d)
	}
	return result{}
}
