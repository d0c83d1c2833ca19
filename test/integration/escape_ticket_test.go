//go:build integration

package integration

import (
	"encoding/hex"
	"encoding/json"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	var a, b map[string]any
	if json.Unmarshal(orig, &a) != nil || json.Unmarshal(other, &b) != nil {
		t.Fatalf("tickets: %s %s", orig, other)
	}
	for _, tc := range []struct {
		name   string
		ticket func() map[string]any
	}{
		{"tb's ticket as ta's", func() map[string]any { return b }},
		{"ta's ticket naming tb's box", func() map[string]any {
			f := map[string]any{}
			for k, v := range a {
				f[k] = v
			}
			f["dir"], f["id"], f["record"], f["provision"] = b["dir"], b["id"], b["record"], b["provision"]
			return f
		}},
		{"ta's ticket naming tb's box and name", func() map[string]any {
			f := map[string]any{}
			for k, v := range b {
				f[k] = v
			}
			f["store"] = a["store"]
			return f
		}},
	} {
		buf, _ := json.Marshal(tc.ticket())
		if err := os.WriteFile(ta, buf, 0o600); err != nil {
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
