//go:build integration

package integration

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/runtime/session"
	"github.com/devbox-dev/devbox/test/testutil"
)

// The front (cmd/devbox) serves `devbox shell` and `devbox exec` on a
// running box itself; DEVBOX_TRACE shows which of front and CLI ran the
// session ("front: session", or "front: to the CLI: WHY"). A set
// DEVBOX_LOG_LEVEL always sends the command to the CLI: the tests compare
// the two paths with it.

// frontRun runs devbox with tracing on; viaCLI forces the CLI's path. It
// returns the result without the trace lines, and the trace.
func (e *env) frontRun(viaCLI bool, stdin *os.File, dir string, args ...string) (result, string) {
	e.t.Helper()
	c := e.cmd(args...)
	c.Env = append(c.Env, "DEVBOX_TRACE=1", "LANG=C.UTF-8", "TERM=xterm-256color", "FRONT_NOT_PASSED=1")
	if viaCLI {
		c.Env = append(c.Env, "DEVBOX_LOG_LEVEL=warn")
	}
	c.Dir = dir
	if stdin != nil {
		c.Stdin = stdin
	}
	r := e.runCmd(c)
	var trace, rest []string
	for _, l := range strings.SplitAfter(r.stderr, "\n") {
		if strings.HasPrefix(l, "devbox-trace ") {
			trace = append(trace, l)
		} else if l != "" {
			rest = append(rest, l)
		}
	}
	r.stderr = strings.Join(rest, "")
	return r, strings.Join(trace, "")
}

// both runs a command through the front's path and the CLI's and checks
// that the front served it and that both gave the same result.
func (e *env) both(t *testing.T, stdin func() *os.File, dir string, args ...string) result {
	t.Helper()
	var in *os.File
	if stdin != nil {
		in = stdin()
	}
	fast, tr := e.frontRun(false, in, dir, args...)
	if !strings.Contains(tr, " front: session\n") {
		t.Fatalf("devbox %v: the front did not serve the session:\n%s", args, tr)
	}
	if stdin != nil {
		in = stdin()
	}
	slow, tr := e.frontRun(true, in, dir, args...)
	if !strings.Contains(tr, " front: to the CLI: DEVBOX_LOG_LEVEL is set\n") || !strings.Contains(tr, " root: commands built\n") {
		t.Fatalf("devbox %v with DEVBOX_LOG_LEVEL: the CLI did not run:\n%s", args, tr)
	}
	if fast != slow {
		t.Errorf("devbox %v:\nfront: %+v\n  CLI: %+v", args, fast, slow)
	}
	return fast
}

func TestFrontSessionLikeCLI(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "fr", "--image", "debian", "--grace", "120")
	// The CLI starts the box; its session leaves the ticket.
	if r, tr := e.frontRun(false, nil, "", "shell", "fr", "--", "true"); r.code != 0 || !strings.Contains(tr, "front: to the CLI") {
		t.Fatalf("first session: %+v\n%s", r, tr)
	}
	work := filepath.Join(e.home, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	pipeIn := func(s string) func() *os.File {
		return func() *os.File {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			go func() { w.WriteString(s); w.Close() }()
			t.Cleanup(func() { r.Close() })
			return r
		}
	}
	// Exit codes, stdout and stderr.
	r := e.both(t, nil, "", "shell", "fr", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
	if r.code != 7 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("exit 7: %+v", r)
	}
	r = e.both(t, nil, "", "exec", "fr", "false")
	if r.code != 1 {
		t.Errorf("false: %+v", r)
	}
	if r := e.both(t, nil, "", "exec", "fr", "--", "nosuchcommand"); r.code != 127 {
		t.Errorf("a missing command: %+v", r)
	}
	// The environment, the working directory and the ids.
	r = e.both(t, nil, work, "shell", "fr", "--", "sh", "-c", "env | sort; pwd; id")
	for _, want := range []string{"LANG=C.UTF-8\n", "TERM=xterm-256color\n", "DEVBOX_NAME=fr\n", "HOME=" + e.home + "\n", work + "\n", "uid="} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the session lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "FRONT_NOT_PASSED") || strings.Contains(r.stdout, "_DEVBOX") {
		t.Errorf("the session got the caller's other variables:\n%s", r.stdout)
	}
	if r := e.both(t, nil, "", "exec", "--root", "fr", "id", "-u"); r.stdout != "0\n" {
		t.Errorf("--root: %+v", r)
	}
	if r := e.both(t, nil, "", "shell", "fr", "--root", "--", "id", "-G"); r.code != 0 {
		t.Errorf("--root after NAME: %+v", r)
	}
	// stdin piped in.
	if r := e.both(t, pipeIn("through\nthe pipe\n"), "", "exec", "-i", "fr", "--", "cat"); r.stdout != "through\nthe pipe\n" {
		t.Errorf("stdin: %+v", r)
	}
	// A terminal on stdin reaches the box as a pipe (relayed); -t gets a
	// pty of the box's.
	ptyIn := func() *os.File {
		m, s := openPTY(t)
		t.Cleanup(func() { m.Close(); s.Close() })
		return s
	}
	if r := e.both(t, ptyIn, "", "exec", "-T", "fr", "--", "sh", "-c", "test -t 0 && echo tty || echo pipe"); r.stdout != "pipe\n" {
		t.Errorf("a terminal on stdin: %+v", r)
	}
	if r := e.both(t, ptyIn, "", "exec", "-t", "fr", "--", "sh", "-c", "test -t 0 && test -t 1 && echo tty"); !strings.Contains(r.stdout, "tty") {
		t.Errorf("-t: %+v", r)
	}
}

func TestFrontHandsOver(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "fr", "--image", "debian", "--grace", "120")
	e.ok("shell", "fr", "--", "true")
	if _, tr := e.frontRun(false, nil, "", "shell", "fr", "--", "true"); !strings.Contains(tr, " front: session\n") {
		t.Fatalf("a running box: the front did not serve it:\n%s", tr)
	}
	// A box name that does not exist: the CLI's error and exit code.
	miss, tr := e.frontRun(false, nil, "", "shell", "nosuchbox", "--", "true")
	if !strings.Contains(tr, "front: to the CLI") {
		t.Errorf("a missing box: not handed over:\n%s", tr)
	}
	cli, _ := e.frontRun(true, nil, "", "shell", "nosuchbox", "--", "true")
	if miss != cli || miss.code != 125 || !strings.Contains(miss.stderr, "hint:") {
		t.Errorf("a missing box: front %+v, CLI %+v", miss, cli)
	}
	// A record changed since the CLI read it (an edit by hand): the CLI
	// checks it again, and the front serves the next session.
	var dir string
	for _, b := range e.boxes() {
		if b.Name == "fr" {
			dir = b.Dir
		}
	}
	now := time.Now()
	if err := os.Chtimes(filepath.Join(dir, "box.json"), now, now); err != nil {
		t.Fatal(err)
	}
	if r, tr := e.frontRun(false, nil, "", "shell", "fr", "--", "true"); r.code != 0 || !strings.Contains(tr, "box.json changed") {
		t.Errorf("a changed record: %+v\n%s", r, tr)
	}
	if _, tr := e.frontRun(false, nil, "", "shell", "fr", "--", "true"); !strings.Contains(tr, " front: session\n") {
		t.Errorf("after the CLI checked the record again: the front did not serve it:\n%s", tr)
	}
	// A stopped box: the CLI starts it.
	e.ok("stop", "fr")
	r, tr := e.frontRun(false, nil, "", "exec", "fr", "--", "echo", "up")
	if r.code != 0 || r.stdout != "up\n" || !strings.Contains(tr, "front: to the CLI: box not running") {
		t.Errorf("a stopped box: %+v\n%s", r, tr)
	}
	// Forms the front leaves to the CLI.
	for _, args := range [][]string{
		{"exec", "fr"},                                     // no command: a usage error
		{"exec", "-t", "-T", "fr", "true"},                 // contradicting flags
		{"shell", "--image", "debian", "fr", "--", "true"}, // a create flag
		{"shell", "fr", "--help"},
	} {
		_, tr := e.frontRun(false, nil, "", args...)
		if strings.Contains(tr, "front: session") {
			t.Errorf("devbox %v: served by the front", args)
		}
		fast, _ := e.frontRun(false, nil, "", args...)
		slow, _ := e.frontRun(true, nil, "", args...)
		if fast != slow {
			t.Errorf("devbox %v:\nfront: %+v\n  CLI: %+v", args, fast, slow)
		}
	}
	// devbox version names the front (exported wrappers name it too:
	// TestExport*), never the CLI's copy in the runtime directory.
	bin, err := filepath.EvalSymlinks(e.bin)
	if err != nil {
		t.Fatal(err)
	}
	if v := e.ok("version"); !strings.Contains(v.stdout, "\nfront:     "+bin+" + embedded devbox-cli sha256:") {
		t.Errorf("version does not name the front %s:\n%s", bin, v.stdout)
	}
}

// TestFrontTicketsGoWithTheirBoxes: a session leaves a ticket for the
// front in $XDG_RUNTIME_DIR/devbox/front; devbox rm takes the box's
// ticket with it, and devbox prune removes tickets whose box is gone and
// whatever was planted among them (a link to a file of the user's, a
// huge file, a ticket copied under another name), removing each as
// itself, never following or reading it whole (prune --dry-run lists
// each), while a running box's
// ticket stays and the front still serves it. Before, every ticket
// outlived its box.
func TestFrontTicketsGoWithTheirBoxes(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	front := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox", "front")
	// ours returns this store's tickets: file name → box name.
	ours := func() map[string]string {
		out := map[string]string{}
		ents, _ := os.ReadDir(front)
		for _, ent := range ents {
			b, err := os.ReadFile(filepath.Join(front, ent.Name()))
			if err != nil {
				continue
			}
			if tk, err := session.DecodeTicket(b); err == nil && strings.HasPrefix(tk.Dir, e.root+"/") {
				out[ent.Name()] = tk.Name
			}
		}
		return out
	}
	for _, n := range []string{"gone", "kept"} {
		e.ok("create", n, "--image", "busybox", "--grace", "120")
		e.ok("exec", n, "true")
	}
	tickets := ours()
	if len(tickets) != 2 {
		t.Fatalf("two sessions left tickets %v, want two", tickets)
	}
	var keptFile string
	for f, n := range tickets {
		if n == "kept" {
			keptFile = f
		}
	}
	e.ok("rm", "-f", "gone")
	if got := ours(); len(got) != 1 || got[keptFile] != "kept" {
		t.Errorf("after rm: tickets %v, want only kept's", got)
	}
	// Planted: a removed box's ticket (as an older devbox left it), a
	// link to a file of the user's, a huge file, a copy under another
	// name.
	kept, err := os.ReadFile(filepath.Join(front, keptFile))
	if err != nil {
		t.Fatal(err)
	}
	ktk, err := session.DecodeTicket(kept)
	if err != nil {
		t.Fatal(err)
	}
	ktk.Name = "ghost"
	ghost := session.EncodeTicket(ktk)
	h := fnv.New128a()
	h.Write([]byte(e.root + "\x00ghost"))
	c := plantCanary(t, e.home)
	planted := map[string]func(p string) error{
		hex.EncodeToString(h.Sum(nil)): func(p string) error { return os.WriteFile(p, ghost, 0o600) },
		"link-" + keptFile[:8]:         func(p string) error { return os.Symlink(c.path, p) },
		"copy-" + keptFile[:8]:         func(p string) error { return os.WriteFile(p, kept, 0o600) },
		"huge-" + keptFile[:8]:         func(p string) error { return testutil.HugeFile(p, kept) },
	}
	for name, plant := range planted {
		if err := plant(filepath.Join(front, name)); err != nil {
			t.Fatal(err)
		}
	}
	// prune --dry-run lists each of them as a ticket, and not kept's.
	r := e.ok("prune", "--dry-run", "--json")
	var items []struct{ Kind, Name string }
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil {
		t.Fatalf("prune --dry-run --json: %v: %q", err, r.stdout)
	}
	listed := map[string]bool{}
	for _, it := range items {
		if it.Kind == "ticket" {
			listed[it.Name] = true
		}
	}
	for name := range planted {
		if !listed[name] {
			t.Errorf("prune --dry-run does not list %s: %v", name, items)
		}
	}
	if listed[keptFile] {
		t.Errorf("prune --dry-run lists the running box's ticket %s", keptFile)
	}
	e.ok("prune", "--force")
	for name := range planted {
		if _, err := os.Lstat(filepath.Join(front, name)); err == nil {
			os.Remove(filepath.Join(front, name))
			t.Errorf("prune left %s", name)
		}
	}
	c.check(t)
	if got := ours(); len(got) != 1 || got[keptFile] != "kept" {
		t.Errorf("after prune: tickets %v, want only kept's", got)
	}
	if _, tr := e.frontRun(false, nil, "", "exec", "kept", "true"); !strings.Contains(tr, " front: session\n") {
		t.Errorf("after prune the front does not serve the running box:\n%s", tr)
	}
}

// TestFrontFollowsConfig: the front takes the configuration's settings
// from the caller record the CLI left (the front reads no TOML) only
// while the configuration file has the content the CLI read and the
// identity's variables are as they were: an edited file — valid, broken,
// or moving the store — sends the session to the CLI, which behaves as
// without a front, and a file edited back to the recorded content is the
// front's again at once.
func TestFrontFollowsConfig(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	cfgPath := filepath.Join(e.config, "devbox", "config.toml")
	orig, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	setConfig := func(s string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.ok("create", "fc", "--image", "busybox", "--home", filepath.Join(e.home, "fc-home"), "--grace", "120")
	e.ok("exec", "fc", "true") // the CLI starts it and leaves the records
	served := func(what string, want bool, extra ...string) result {
		t.Helper()
		c := e.cmd("exec", "fc", "--", "sh", "-c", "echo $DEVBOX_NAME")
		c.Env = append(c.Env, append([]string{"DEVBOX_TRACE=1"}, extra...)...)
		r := e.runCmd(c)
		if got := strings.Contains(r.stderr, " front: session\n"); got != want {
			t.Errorf("%s: served by the front: %v, want %v\n%s", what, got, want, r.stderr)
		}
		return r
	}
	served("as recorded", true)
	// The same settings, another content: the CLI, then the front.
	setConfig(string(orig) + "# a comment\n")
	if r := served("a comment added", false); r.code != 0 || !strings.Contains(r.stderr, "config.toml changed") {
		t.Errorf("a comment added: %+v", r)
	}
	served("after the CLI read it", true)
	// Broken: the CLI's error, as without a front.
	setConfig(string(orig) + "[store\n")
	fast := served("broken", false)
	slow, _ := e.frontRun(true, nil, "", "exec", "fc", "--", "sh", "-c", "echo $DEVBOX_NAME")
	fast.stderr = traceless(fast.stderr)
	if fast.code == 0 || fast != slow || !strings.Contains(fast.stderr, "hint:") {
		t.Errorf("a broken configuration:\nfront: %+v\n  CLI: %+v", fast, slow)
	}
	// Another store: no box fc there.
	other := filepath.Join(e.home, "other-store")
	setConfig(string(orig) + fmt.Sprintf("[store]\nroot = %q\n", other))
	if r := served("another store", false); r.code == 0 || strings.Contains(r.stdout, "fc") {
		t.Errorf("another store: %+v", r)
	}
	// Back to what the record holds: the front's at once.
	setConfig(string(orig) + "# a comment\n")
	served("edited back", true)
	// The identity's variables.
	if r := served("DEVBOX_SUBIDS=none", false, "DEVBOX_SUBIDS=none"); !strings.Contains(r.stderr, "DEVBOX_SUBIDS changed") {
		t.Errorf("DEVBOX_SUBIDS=none: %s", r.stderr)
	}
}

// traceless is s without devbox-trace lines.
func traceless(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "devbox-trace ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
