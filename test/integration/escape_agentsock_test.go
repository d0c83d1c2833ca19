//go:build integration

package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/test/testutil"
)

// TestEscapeAgentSocketStandIn: the CLI and the front send a session's
// request (argv, environment, working directory) and its stdio to whatever
// listens on the box's agent.sock. Another local user who keeps a process
// in devbox's runtime directory can stand in for the box:
//
//   - "devbox-dir": the other user made $XDG_RUNTIME_DIR/devbox while
//     XDG_RUNTIME_DIR was writable by all; devbox refused that, its hint
//     said chmod 700, the user did, and devbox then used the other user's
//     devbox/ (rundir.Base checked only XDG_RUNTIME_DIR itself). The other
//     user's process, whose working directory is in there, swaps the box's
//     directory for one with its own agent.sock. devbox must refuse a
//     devbox/ that is not the user's own and private, and write nothing
//     in it.
//   - "peer": a box's own directory made writable by others (a hole in the
//     directory checks, which this stands in for): the other user replaces
//     agent.sock with its own listener. The client must check who listens
//     (SO_PEERCRED: devbox on the host, as the user) and send nothing to
//     anyone else.
//
// Before the fixes the other user's listener received the session's
// request with its argv in both cases.
func TestEscapeAgentSocketStandIn(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	probe := testutil.ProbeBin(t)
	// standIn starts script as another user in directory dir; the script
	// waits for a file "go" there, then becomes probe fake-listen. kill
	// ends it (once) and returns its output; ready is closed when it
	// listens.
	standIn := func(dir, script string) (kill func() string, ready <-chan struct{}) {
		t.Helper()
		c := anotherUser(t, "sh", "-c", `while [ ! -e go ]; do sleep 0.05; done; `+script, probe)
		c.Dir = dir
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		rd := make(chan struct{})
		go func() {
			var b strings.Builder
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "ready" {
					close(rd)
				}
				b.WriteString(sc.Text() + "\n")
			}
			got <- b.String()
		}()
		var once sync.Once
		var output string
		return func() string {
			once.Do(func() {
				c.Process.Kill()
				c.Wait()
				output = <-got
			})
			return output
		}, rd
	}
	waitReady := func(ready <-chan struct{}, kill func() string) {
		t.Helper()
		select {
		case <-ready:
		case <-time.After(20 * time.Second):
			t.Fatalf("the other user's listener did not listen (the test is void):\n%s", kill())
		}
	}
	newRuntimeDir := func() string {
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
		return rt
	}
	boxID := func(name string) string {
		for _, b := range e.boxes() {
			if b.Name == name {
				return b.ID
			}
		}
		t.Fatalf("no box %s", name)
		return ""
	}

	t.Run("devbox-dir", func(t *testing.T) {
		rt := newRuntimeDir()
		if err := os.Chmod(rt, 0o777); err != nil {
			t.Fatal(err)
		}
		devboxDir := filepath.Join(rt, "devbox")
		if out, err := anotherUser(t, "sh", "-c", `umask 0 && mkdir "$0"`, devboxDir).CombinedOutput(); err != nil {
			t.Fatalf("another user making %s: %v\n%s", devboxDir, err, out)
		}
		env := []string{"XDG_RUNTIME_DIR=" + rt}
		kill, ready := standIn(devboxDir, `for d in ????????????????; do [ -d "$d" ] || continue; `+
			`mv "$d" "$d.old" && mkdir -m 777 "$d" && exec "$0" fake-listen 60 "$d/agent.sock"; done; echo no box directory`)
		t.Cleanup(func() {
			kill()
			// The box's own directory back, so that rm stops the box.
			anotherUser(t, "sh", "-c", `cd "$0" && for d in *.old; do [ -d "$d" ] || continue; rm -rf "${d%.old}"; mv "$d" "${d%.old}"; done`, devboxDir).Run()
			os.Chmod(rt, 0o777) // for the other user's removal of its devbox/
			e.runEnv(env, "rm", "-f", "tsd")
			if ents, err := os.ReadDir(devboxDir); err == nil {
				for _, ent := range ents {
					os.RemoveAll(filepath.Join(devboxDir, ent.Name()))
				}
			}
			removeAsAnotherUser(t, devboxDir)
		})
		// The user follows devbox's hint for a runtime directory others
		// may write (TestEscapeFrontRuntimeDirWritableByOthers).
		if err := os.Chmod(rt, 0o700); err != nil {
			t.Fatal(err)
		}
		e.ok("create", "tsd", "--image", "busybox", "--home", filepath.Join(e.home, "tsd-home"), "--grace", "120")
		r := e.runEnv(env, "exec", "tsd", "--", "true")
		if r.code != 0 {
			if !strings.Contains(r.stderr, devboxDir) || !strings.Contains(r.stderr, "hint:") {
				t.Errorf("refused, but not saying why: exit %d\n%s", r.code, r.stderr)
			}
			if ents, _ := os.ReadDir(devboxDir); len(ents) != 0 {
				t.Errorf("devbox wrote into the other user's directory: %v", ents)
			}
			return
		}
		if err := os.WriteFile(filepath.Join(devboxDir, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		waitReady(ready, kill)
		r = e.runEnv(env, "exec", "tsd", "--", "echo", "secret-in-argv")
		if s := kill(); strings.Contains(s, "secret-in-argv") {
			t.Errorf("the session went to another user's socket (exit %d):\n%s", r.code, s)
		}
	})

	t.Run("peer", func(t *testing.T) {
		rt := newRuntimeDir()
		env := []string{"XDG_RUNTIME_DIR=" + rt}
		t.Cleanup(func() { e.runEnv(env, "rm", "-f", "tsp") })
		e.ok("create", "tsp", "--image", "busybox", "--home", filepath.Join(e.home, "tsp-home"), "--grace", "120")
		if r := e.runEnv(env, "exec", "tsp", "--", "true"); r.code != 0 {
			t.Fatalf("starting the box: exit %d\n%s", r.code, r.stderr)
		}
		devboxDir := filepath.Join(rt, "devbox")
		boxDir := filepath.Join(devboxDir, boxID("tsp")[:16])
		sock := filepath.Join(boxDir, "agent.sock")
		if _, err := os.Stat(sock); err != nil {
			t.Fatalf("the running box's agent socket (the test is void): %v", err)
		}
		// The other user gets into the box's directory while the way is
		// open, and it stays open only there.
		for _, d := range []string{rt, devboxDir} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(boxDir, 0o777); err != nil {
			t.Fatal(err)
		}
		kill, ready := standIn(boxDir, `exec "$0" fake-listen 60 agent.sock`)
		t.Cleanup(func() { kill() })
		time.Sleep(300 * time.Millisecond) // its working directory is there
		for _, d := range []string{rt, devboxDir} {
			if err := os.Chmod(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(boxDir, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		waitReady(ready, kill)
		r := e.runEnv(env, "exec", "tsp", "--", "echo", "secret-in-argv")
		if s := kill(); strings.Contains(s, "secret-in-argv") {
			t.Errorf("the session went to another user's socket (exit %d):\n%s", r.code, s)
		}
		if r.code == 0 || !strings.Contains(r.stderr, "hint:") {
			t.Errorf("a stand-in agent: exit %d %q, want a refusal with a hint", r.code, r.stderr)
		}
	})
}
