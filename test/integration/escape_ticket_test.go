//go:build integration

package integration

import (
	"encoding/hex"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/runtime/session"
	"github.com/devbox-dev/devbox/test/testutil"
)

// TestEscapeFrontForgedTicket: the front serves a session through the
// ticket the CLI left for a box name; a ticket moved or edited to send the
// session of box ta to box tb (tb's ticket copied over ta's; ta's naming
// tb's directory, id and record) must never reach tb: the front leaves
// the command to the CLI, whose session is ta's, and the next one is the
// front's again.
func TestEscapeFrontForgedTicket(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	for _, n := range []string{"ta", "tb"} {
		e.ok("create", n, "--image", "busybox", "--home", filepath.Join(e.home, n+"-home"), "--grace", "120")
		e.ok("exec", n, "--", "true") // the CLI starts it and leaves its ticket
	}
	// runtime/session's ticket path: a digest of store and name.
	ticket := func(name string) string {
		h := fnv.New128a()
		h.Write([]byte(e.root + "\x00" + name))
		return filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox", "front", hex.EncodeToString(h.Sum(nil)))
	}
	whose := func(what string) string {
		t.Helper()
		r, tr := e.frontRun(false, nil, "", "exec", "ta", "--", "sh", "-c", "echo $DEVBOX_NAME")
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s", what, r.code, r.stderr)
		}
		if strings.Contains(tr, " front: session\n") {
			return "front " + strings.TrimSpace(r.stdout)
		}
		return "CLI " + strings.TrimSpace(r.stdout)
	}
	if got := whose("before"); got != "front ta" {
		t.Fatalf("the front does not serve ta (the test is void): %s", got)
	}
	ta, tb := ticket("ta"), ticket("tb")
	orig, err := os.ReadFile(ta)
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(tb)
	if err != nil {
		t.Fatal(err)
	}
	a, aerr := session.DecodeTicket(orig)
	b, berr := session.DecodeTicket(other)
	if aerr != nil || berr != nil {
		t.Fatalf("tickets: %s %s", orig, other)
	}
	for _, tc := range []struct {
		name   string
		ticket func() session.Ticket
	}{
		{"tb's ticket as ta's", func() session.Ticket { return b }},
		{"ta's ticket naming tb's box", func() session.Ticket {
			f := a
			f.Dir, f.ID, f.Record, f.Provision = b.Dir, b.ID, b.Record, b.Provision
			return f
		}},
		{"ta's ticket naming tb's box and name", func() session.Ticket {
			f := b
			f.Store = a.Store
			return f
		}},
	} {
		if err := os.WriteFile(ta, session.EncodeTicket(tc.ticket()), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := whose(tc.name); got != "CLI ta" {
			t.Errorf("%s: the session went to %q, want the CLI's to ta", tc.name, got)
		}
		if got := whose(tc.name + ", then"); got != "front ta" {
			t.Errorf("%s: the next session: %q, want the front's to ta", tc.name, got)
		}
	}
}

// TestEscapeFrontRuntimeDirWritableByOthers: the caller's XDG_RUNTIME_DIR
// is theirs but anyone may write it (mode 0777), and another user made
// devbox's directory in it first. Once a box runs, that user swaps the
// box's runtime directory for one with an agent socket of their own: the
// next session (argv, environment, working directory, stdio) must never
// reach it. devbox refuses such a runtime directory.
func TestEscapeFrontRuntimeDirWritableByOthers(t *testing.T) {
	e := newEnv(t)
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rt := filepath.Join(base, "rt")
	if err := os.Mkdir(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(rt, 0o777); err != nil {
		t.Fatal(err)
	}
	devboxDir := filepath.Join(rt, "devbox")
	if out, err := anotherUser(t, "sh", "-c", `umask 0 && mkdir "$0"`, devboxDir).CombinedOutput(); err != nil {
		t.Fatalf("another user making %s: %v\n%s", devboxDir, err, out)
	}
	env := []string{"XDG_RUNTIME_DIR=" + rt, traceEnv}
	var boxDir string
	t.Cleanup(func() {
		// The box's own runtime directory back (the other user moved it),
		// so that rm stops the box; then what each of the two made.
		if boxDir != "" {
			anotherUser(t, "sh", "-c", `test -d "$0.old" && rm -rf "$0" && mv "$0.old" "$0"`, boxDir).Run()
		}
		e.runEnv(env, "rm", "-f", "tw")
		if ents, err := os.ReadDir(devboxDir); err == nil {
			for _, ent := range ents {
				os.RemoveAll(filepath.Join(devboxDir, ent.Name()))
			}
		}
		removeAsAnotherUser(t, devboxDir)
	})
	e.ok("create", "tw", "--image", "busybox", "--home", filepath.Join(e.home, "tw-home"))
	r := e.runEnv(env, "exec", "tw", "--", "true")
	if r.code != 0 {
		// Refused: nothing of the box may be in the other user's directory.
		if !strings.Contains(r.stderr, "XDG_RUNTIME_DIR") || !strings.Contains(r.stderr, "hint:") {
			t.Errorf("refused, but not saying why: exit %d\n%s", r.code, r.stderr)
		}
		if ents, _ := os.ReadDir(devboxDir); len(ents) != 0 {
			t.Errorf("devbox wrote into the other user's directory: %v", ents)
		}
		return
	}
	for _, b := range e.boxes() {
		if b.Name == "tw" {
			boxDir = filepath.Join(devboxDir, b.ID[:16])
		}
	}
	if _, err := os.Stat(filepath.Join(boxDir, "agent.sock")); err != nil {
		t.Fatalf("the running box's agent socket (the test is void): %v", err)
	}
	swap := anotherUser(t, "sh", "-c", `mv "$0" "$0.old" && mkdir -m 777 "$0"`, boxDir)
	if out, err := swap.CombinedOutput(); err != nil {
		t.Fatalf("another user swapping %s: %v\n%s", boxDir, err, out)
	}
	fake := anotherUser(t, testutil.ProbeBin(t), "fake-listen", "30", filepath.Join(boxDir, "agent.sock"))
	got := startFake(t, fake)
	r = e.runEnv(env, "exec", "tw", "--", "echo", "secret-in-argv")
	fake.Process.Kill()
	fake.Wait()
	if s := <-got; strings.Contains(s, "request:") {
		t.Errorf("the session went to another user's socket (exit %d):\n%s", r.code, s)
	}
}
