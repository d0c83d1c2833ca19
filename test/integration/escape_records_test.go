//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Records are input: a box.json edited by hand (or by anything that can
// write the store) must not decide what a box mounts. Each attack edits a
// real box's record, then checks that devbox refuses to start it with one
// line naming the file and a hint, lists it as broken, and leaves a canary
// directory outside the store untouched.

// brokenListing is what ls --json says of a box.
type brokenListing struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Status  string `json:"status"`
	Problem string `json:"problem"`
}

func (e *env) listings() []brokenListing {
	e.t.Helper()
	var out []brokenListing
	r := e.ok("ls", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("ls --json: %v: %s", err, r.stdout)
	}
	return out
}

func TestEscapeRecordHandEdited(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	canary := filepath.Join(e.home, "canary")
	os.MkdirAll(filepath.Join(canary, "sub"), 0o755)
	os.WriteFile(filepath.Join(canary, "sub", "secret"), []byte("do not touch"), 0o600)
	before := treeSums(t, canary)

	e.ok("create", "victim", "--image", "busybox")
	dir := e.boxDir("victim")
	recPath := filepath.Join(dir, "box.json")
	orig, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	var good map[string]any
	if err := json.Unmarshal(orig, &good); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(m map[string]any)
		raw  string
		want string
	}{
		{"lower is a directory outside the store", func(m map[string]any) { m["lowers"] = []any{canary} }, "", "not a layer id"},
		{"lower climbs out of layers/", func(m map[string]any) {
			m["lowers"] = []any{"../../../../../../../../" + strings.TrimPrefix(canary, "/")}
		}, "", "not a layer id"},
		{"volume source swapped with ..", func(m map[string]any) {
			m["volumes"] = []any{map[string]any{"source": "/tmp/../" + strings.TrimPrefix(canary, "/"), "target": "/data"}}
		}, "", "not a clean path"},
		{"relative volume source", func(m map[string]any) {
			m["volumes"] = []any{map[string]any{"source": "home/canary", "target": "/data"}}
		}, "", "not an absolute path"},
		{"relative home", func(m map[string]any) { m["home"] = "canary" }, "", "not an absolute path"},
		{"hostname injects hosts lines", func(m map[string]any) { m["hostname"] = "x\n10.9.9.9 registry" }, "", "not a host name"},
		{"wrong JSON type", func(m map[string]any) { m["volumes"] = canary }, "", "must be a JSON array"},
		{"unknown version", func(m map[string]any) { m["version"] = 99 }, "", "version 99"},
		{"id of another directory", func(m map[string]any) { m["id"] = strings.Repeat("f", 32) }, "", "does not match its directory"},
		{"not JSON", nil, "{", "not a valid record"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.raw)
			if c.edit != nil {
				m := map[string]any{}
				json.Unmarshal(orig, &m)
				c.edit(m)
				b, _ = json.Marshal(m)
			}
			if err := os.WriteFile(recPath, b, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"shell", "victim", "--", "true"}, {"exec", "victim", "--", "true"}} {
				r := e.run(args...)
				msg := strings.TrimSpace(r.stderr)
				if r.code == 0 || !strings.Contains(msg, recPath) || !strings.Contains(msg, c.want) || !strings.Contains(msg, "devbox rm -f") || strings.Contains(msg, "\n") {
					t.Errorf("devbox %v: exit %d, stderr %q; want a one-line refusal naming %s, %q and a hint", args, r.code, r.stderr, recPath, c.want)
				}
			}
			found := false
			for _, l := range e.listings() {
				if l.ID == filepath.Base(dir) {
					found = true
					if l.Status != "broken" || !strings.Contains(l.Problem, c.want) {
						t.Errorf("ls --json: %+v, want status broken and the reason", l)
					}
				}
			}
			if !found {
				t.Error("the box with a broken record is not listed")
			}
			if r := e.ok("ls"); !strings.Contains(r.stdout, "broken") || !strings.Contains(r.stderr, recPath) {
				t.Errorf("ls: %q / %q, want the box shown as broken and the reason on stderr", r.stdout, r.stderr)
			}
		})
	}
	after := treeSums(t, canary)
	for p, s := range before {
		if after[p] != s {
			t.Errorf("canary %s changed or vanished", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("canary had %d entries, now %d", len(before), len(after))
	}
	// The hint works: a broken box is removed like any other, and only
	// its directory goes.
	bad := map[string]any{}
	json.Unmarshal(orig, &bad)
	bad["lowers"] = []any{canary}
	b, _ := json.Marshal(bad)
	os.WriteFile(recPath, b, 0o600)
	e.ok("rm", "-f", "victim")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("box directory left after rm: %v", err)
	}
	if len(e.listings()) != 0 {
		t.Error("box still listed after rm")
	}
	if got := treeSums(t, canary); len(got) != len(before) {
		t.Error("rm of the broken box touched the canary")
	}
	// A record restored by hand is usable again: validation refuses
	// nothing devbox itself writes.
	e.ok("create", "again", "--image", "busybox")
	if r := e.ok("shell", "again", "--", "echo", "ok"); strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("a valid box: %q", r.stdout)
	}
}

// TestEscapeRecordRelativeStore: a relative store root would be a
// different store in every directory devbox runs from; it is refused,
// from the flag, the environment and the configuration file, and nothing
// is created.
func TestEscapeRecordRelativeStore(t *testing.T) {
	e := newEnv(t)
	cwd := t.TempDir()
	cfgPath := filepath.Join(e.config, "devbox", "config.toml")
	base, _ := os.ReadFile(cfgPath)
	for _, c := range []struct {
		name  string
		args  []string
		extra []string
		cfg   string
		want  string
	}{
		{"flag", []string{"--store", "rel", "images"}, nil, "", "--store: store \"rel\" is not an absolute path"},
		{"environment", []string{"images"}, []string{"DEVBOX_STORE=./rel"}, "", "DEVBOX_STORE: store \"./rel\" is not an absolute path"},
		{"config", []string{"images"}, nil, "[store]\nroot = \"rel\"\n", "[store] root \"rel\" is not an absolute path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(cfgPath, append(append([]byte{}, base...), c.cfg...), 0o644)
			defer os.WriteFile(cfgPath, base, 0o644)
			cmd := e.cmd(c.args...)
			cmd.Dir = cwd
			cmd.Env = append(cmd.Env, c.extra...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "hint:") {
				t.Errorf("devbox %v: %v %q, want a refusal containing %q and a hint", c.args, err, out, c.want)
			}
			if ents, _ := os.ReadDir(cwd); len(ents) != 0 {
				t.Errorf("a store was created in the working directory: %v", ents)
			}
		})
	}
}

// TestEscapeRecordKilledRunPrune: devbox run killed (SIGKILL) at various
// moments, ephemeral or kept, leaves directories that devbox prune removes
// entirely; a live run's are never touched, however old they look.
func TestEscapeRecordKilledRunPrune(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "busybox")
	rt := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox")
	containers := filepath.Join(e.root, "containers")
	locks := filepath.Join(e.root, "locks")
	runIDs := func() map[string]bool {
		m := map[string]bool{}
		ents, _ := os.ReadDir(containers)
		for _, ent := range ents {
			m[ent.Name()] = true
		}
		ents, _ = os.ReadDir(locks)
		for _, ent := range ents {
			if id, ok := strings.CutPrefix(ent.Name(), "run-"); ok {
				m[strings.TrimSuffix(id, ".lock")] = true
			}
		}
		return m
	}
	variants := [][]string{
		{"run", "busybox", "--", "sleep", "20"},
		{"run", "--net", "none", "busybox", "--", "sleep", "20"},
		{"run", "--keep", "busybox", "--", "sleep", "20"},
		{"run", "--name", "kept", "busybox", "--", "sleep", "20"},
	}
	for _, d := range []time.Duration{5 * time.Millisecond, 30 * time.Millisecond, 80 * time.Millisecond, 300 * time.Millisecond, 1500 * time.Millisecond} {
		for _, args := range variants {
			c := e.cmd(args...)
			c.Env = append(c.Env, "DEVBOX_WARM=0")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(d)
			c.Process.Kill()
			c.Wait()
		}
	}
	left := runIDs()
	if len(left) == 0 {
		t.Fatal("no killed run left anything: the test kills too late")
	}
	// A live kept run whose directory looks old.
	live := startRun(t, e, []string{"DEVBOX_WARM=0"}, false, "run", "--keep", "busybox", "--", "sh", "-c", "echo started; sleep 3; echo alive > /x; cat /x")
	var liveID string
	for id := range runIDs() {
		if !left[id] {
			liveID = id
		}
	}
	if liveID == "" {
		t.Fatal("the live run has no directory")
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(containers, liveID), old, old)
	time.Sleep(time.Second) // killed boxes finish dying

	e.ok("prune", "--force")
	for id := range left {
		for _, p := range []string{filepath.Join(containers, id), filepath.Join(rt, id[:min(len(id), 16)]), filepath.Join(locks, "run-"+id+".lock")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("prune left %s", p)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(containers, liveID)); err != nil {
		t.Errorf("prune removed the live run's directory: %v", err)
	}
	if err := live.c.Wait(); err != nil {
		t.Errorf("the live run failed after prune: %v (%s)", err, live.trace())
	}
	// Once it ended, its kept directory is a leftover like any other.
	if _, err := os.Lstat(filepath.Join(locks, "run-"+liveID+".lock")); err == nil {
		t.Error("a finished run left its lock")
	}
}

// TestEscapeRecordSymlinkedContainers: with the store's containers/
// replaced by a symlink to a directory elsewhere, devbox prune must not
// delete what that directory holds (it looks like a leftover of a run).
func TestEscapeRecordSymlinkedContainers(t *testing.T) {
	e := newEnv(t)
	e.ok("images") // creates the store
	outside := filepath.Join(e.home, "elsewhere")
	victim := filepath.Join(outside, strings.Repeat("a", 32))
	os.MkdirAll(filepath.Join(victim, "upper"), 0o755)
	os.WriteFile(filepath.Join(victim, "upper", "precious"), []byte("keep me"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(victim, old, old)
	containers := filepath.Join(e.root, "containers")
	os.RemoveAll(containers)
	if err := os.Symlink(outside, containers); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(containers)
	before := treeSums(t, outside)
	r := e.run("prune", "--force")
	if r.code == 0 || !strings.Contains(r.stderr, "not a directory of the store") {
		t.Errorf("prune through a symlinked containers/: exit %d %q, want a refusal", r.code, r.stderr)
	}
	after := treeSums(t, outside)
	if len(after) != len(before) {
		t.Fatalf("prune deleted outside the store: %d entries before, %d after", len(before), len(after))
	}
	for p, s := range before {
		if after[p] != s {
			t.Errorf("%s changed or vanished", p)
		}
	}
}
