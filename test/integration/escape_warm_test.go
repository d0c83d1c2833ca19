//go:build integration

package integration

// A red-team pass of the warm path (internal/warm, internal/holder), the
// replay records and the front's session tickets: each test is an attack
// named after it (docs/security.md, "Warm holders and replay").

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/internal/warm"
	"github.com/devbox-dev/devbox/test/testutil"
)

// warmEnv is the environment of runs that use a holder of their own: a
// private runtime directory (so that no other test's holder serves them),
// the trace (to see which path a run took).
func warmEnv(t *testing.T) (rt string, env []string) {
	t.Helper()
	rt = t.TempDir()
	if err := os.Chmod(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	return rt, []string{traceEnv, "XDG_RUNTIME_DIR=" + rt, warm.IdleEnv + "=30"}
}

// viaHolder runs devbox args with env until a run's init was a holder's
// spare and returns that run (runUntil).
func viaHolder(t *testing.T, e *env, env []string, args ...string) result {
	t.Helper()
	return runUntil(t, e, env, warmPath{name: "a spare's start", want: []string{markHolder}}, args...)
}

// viaReplay runs devbox args with env until a run was replayed from its
// record through a holder's spare and returns that run (runUntil).
func viaReplay(t *testing.T, e *env, env []string, args ...string) result {
	t.Helper()
	return runUntil(t, e, env, replayHeld, args...)
}

// runUntil runs devbox args with env until a run took path p (at most six
// runs: the first may record the run or start the holder, whose spares
// take a moment) and returns that run; none fails the test as void.
func runUntil(t *testing.T, e *env, env []string, p warmPath, args ...string) result {
	t.Helper()
	var r result
	for i := 0; i < 6; i++ {
		if r = e.runEnv(env, args...); p.took(r.stderr) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("six runs, none took %s (the test is void): devbox %s\nstdout: %s\nstderr: %s",
		p.name, strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// TestEscapeWarmKeyringShared: boxes a holder's spares start share the
// holder's user namespace, and the kernel keeps one user keyring (@u) and
// one user-session keyring (@us) per uid and user namespace, which outlive
// the processes that use them. A box whose filter allows keyctl (seccomp=
// unconfined) plants a key in both; a later box of the same holder must
// not find it, as a box with a user namespace of its own (a cold start)
// does not.
func TestEscapeWarmKeyringShared(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	_, env := warmEnv(t)
	desc := "devbox-red9-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	flags := []string{"run", "--net", "none", "--security-opt", "seccomp=unconfined", img, "--"}
	// Cold: the key stays in the planting box's namespace (a control of
	// the probe and of the search).
	cold := append(env, coldEnv)
	if r := e.runEnv(cold, append(flags, "/probe", "plant-key", desc+"-cold")...); !strings.Contains(r.stdout, "plant user: ok") {
		t.Fatalf("the probe cannot plant a key (the test is void):\n%s%s", r.stdout, r.stderr)
	}
	if r := e.runEnv(cold, append(flags, "/probe", "keys", desc+"-cold")...); strings.Contains(r.stdout, "FOUND") {
		t.Fatalf("cold starts share a keyring:\n%s", r.stdout)
	}
	// Warm: a holder serves this start (the default filter), then boxes
	// that may use keyrings plant and search, the holder there.
	viaHolder(t, e, env, "run", "--net", "none", img, "--", "/probe", "status")
	for i := 0; i < 3; i++ {
		r := e.runEnv(env, append(flags, "/probe", "plant-key", desc, "plant"+strconv.Itoa(i))...)
		if !strings.Contains(r.stdout, "plant user: ok") || !strings.Contains(r.stdout, "plant user-session: ok") {
			t.Fatalf("the probe cannot plant a key (the test is void):\n%s%s", r.stdout, r.stderr)
		}
	}
	for i := 0; i < 3; i++ {
		r := e.runEnv(env, append(flags, "/probe", "keys", desc, "search"+strconv.Itoa(i))...)
		if strings.Contains(r.stdout, "FOUND") {
			t.Errorf("a box found the key an earlier box planted (warm: %v):\n%s", strings.Contains(r.stderr, markHolder), r.stdout)
		}
	}
}

// TestEscapeWarmInheritedFDs: a box whose init was a holder's spare (the
// CLI's start and a replay's) walks ".." from every descriptor, cwd and
// root it can see, /proc/1's included with SYS_PTRACE, looking for
// canaries in the runtime directory, the holder's directory (its socket
// and the replay records), above the store and in the home. A spare was
// forked by a holder that listens in that directory: nothing of that may
// reach the box.
func TestEscapeWarmInheritedFDs(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	rt, env := warmEnv(t)
	if err := os.MkdirAll(warm.Dir(rt), 0o700); err != nil {
		t.Fatal(err)
	}
	canaries := []fileCanary{plantCanary(t, rt), plantCanary(t, warm.Dir(rt)), plantCanary(t, filepath.Dir(e.data)), plantCanary(t, e.home)}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "cap-add SYS_PTRACE", args: []string{"--cap-add", "SYS_PTRACE"}},
		{name: "every capability", args: []string{"--cap-add", "ALL"}},
		{name: "default network", args: []string{"--net", "slirp", "--cap-add", "SYS_PTRACE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, c := range canaries {
				args := append(append([]string{"run", "--net", "none"}, tc.args...), img, "--", "/probe", "fds", c.name)
				for _, r := range []result{
					viaHolder(t, e, env, append(args, "nonce"+strconv.Itoa(i))...),
					viaReplay(t, e, env, args...),
				} {
					if r.code != 0 || !strings.Contains(r.stdout, "walked: ") {
						t.Fatalf("probe fds: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
					}
					if strings.Contains(r.stdout, "ESCAPED") {
						t.Errorf("a box from a spare reached a host file:\n%s", r.stdout)
					}
				}
				c.check(t)
			}
		})
	}
}

// anotherUser is a command that runs argv as another local user: the
// last of the test user's subordinate uids and gids, which, to the kernel,
// is a user like any other (unshare(1) maps it with newuidmap and becomes
// it). The test user can still signal it (it owns the user namespace).
func anotherUser(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	m := mapping(t)
	u, g := m.SubUIDs[len(m.SubUIDs)-1], m.SubGIDs[len(m.SubGIDs)-1]
	un, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare(1) (util-linux 2.38 or later) is needed to act as another user: %v", err)
	}
	uid, gid := strconv.Itoa(u.Start+u.Length-1), strconv.Itoa(g.Start+g.Length-1)
	return exec.Command(un, append([]string{"--map-users=" + uid + ",0,1", "--map-groups=" + gid + ",0,1",
		"--setuid", "0", "--setgid", "0", "--"}, argv...)...)
}

// TestEscapeWarmRuntimeDirOfAnotherUser: devbox runs with an
// XDG_RUNTIME_DIR that another local user made (one kept across su, say).
// That user listens on every holder socket name there, and devbox must not
// hand it the run (the caller's stdin, stdout and stderr — a terminal on
// stderr — and the pipes that carry the box's spec); then it links every
// holder log name to a file of the caller's, which devbox must not append
// its trace to when it starts a holder. devbox refuses such a directory
// for every command, `run --net none` too (rundir.Base: one line, exit
// 125), and the warm path (the front's replay, the CLI's holder request,
// a holder's start) checks it on its own as well (warm.Private,
// TestPrivate).
func TestEscapeWarmRuntimeDirOfAnotherUser(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o777); err != nil {
		t.Fatal(err)
	}
	rt := filepath.Join(base, "rt")
	warmDir := warm.Dir(rt)
	mk := anotherUser(t, "sh", "-c", `umask 0 && mkdir -p "$1" && chmod 755 "$0"`, rt, warmDir)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("another user making %s: %v\n%s", warmDir, err, out)
	}
	// What the other user made (and devbox made in it).
	t.Cleanup(func() { removeAsAnotherUser(t, rt) })
	if fi, err := os.Stat(rt); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) == os.Getuid() {
		t.Fatalf("the runtime directory is not another user's (the test is void): %v", err)
	}
	env := []string{"XDG_RUNTIME_DIR=" + rt, traceEnv, warm.IdleEnv + "=5"}
	run := []string{"run", "--net", "none", img, "--", "true"}

	// The fake holder.
	fake := anotherUser(t, testutil.ProbeBin(t), "fake-holder", warmDir, "60")
	got := startFake(t, fake)
	refused := func(what string, i int, r result) {
		t.Helper()
		if r.code != 125 || !strings.Contains(r.stderr, "belongs to another user") {
			t.Errorf("run %d %s: exit %d, want 125 and the runtime directory refused\n%s", i, what, r.code, r.stderr)
		}
	}
	for i := 0; i < 3; i++ {
		refused("beside the fake holder", i, e.runEnv(env, run...))
	}
	fake.Process.Kill()
	fake.Wait()
	if s := <-got; strings.Contains(s, "request:") {
		t.Errorf("devbox handed a run to another user's socket in %s:\n%s", warmDir, s)
	}

	// The log links (the sockets are dead now: devbox starts a holder).
	home := plantCanary(t, e.home)
	ln := anotherUser(t, "sh", "-c", `for i in $(seq 0 255); do f=$(printf "%s/h-%02x" "$0" $i); rm -f "$f.sock" && ln -s "$1" "$f.log" || exit 1; done`, warmDir, home.path)
	if out, err := ln.CombinedOutput(); err != nil {
		t.Fatalf("another user linking the holder logs: %v\n%s", err, out)
	}
	for i := 0; i < 4; i++ {
		r := e.runEnv(env, run...)
		refused("beside the links", i, r)
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.Contains(l, "warm:") {
				t.Logf("run %d: %s", i, l)
			}
		}
	}
	// A holder writes its log as it starts, after devbox returned.
	for i := 0; i < 30; i++ {
		if b, err := os.ReadFile(home.path); err != nil || string(b) != home.content {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	home.check(t)
}

// TestEscapeWarmBoxesApart: two boxes from spares of one holder share its
// user namespace and nothing else: while box A runs, having left a file in
// /dev/shm, a POSIX message queue, a System V segment and an abstract
// socket, box B sees none of them. (A control finds all of them
// from A's own box.)
func TestEscapeWarmBoxesApart(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	_, env := warmEnv(t)
	name := "devbox-red9-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	r := e.runEnv(env, "run", "--net", "none", img, "--", "/bin/sh", "-c", "/probe leave "+name+"-self && /probe find "+name+"-self")
	if strings.Count(r.stdout, "FOUND ") != 4 || strings.Count(r.stdout, ": ok") != 4 {
		t.Fatalf("the probe does not find what it left in its own box (the test is void):\n%s%s", r.stdout, r.stderr)
	}
	viaHolder(t, e, env, "run", "--net", "none", img, "--", "/probe", "status")
	a := e.cmd("run", "--net", "none", img, "--", "/bin/sh", "-c", "/probe leave "+name+"; echo left; sleep 10")
	a.Env = append(a.Env, env...)
	out, err := a.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var aErr strings.Builder
	a.Stderr = &aErr
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { a.Process.Kill(); a.Wait() }()
	var left strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "left" {
		left.WriteString(sc.Text() + "\n")
	}
	if strings.Count(left.String(), ": ok") != 4 {
		t.Fatalf("box A left nothing (the test is void):\n%s", left.String())
	}
	r = viaHolder(t, e, env, "run", "--net", "none", img, "--", "/probe", "find", name)
	if !strings.Contains(r.stdout, "looked: 4") {
		t.Fatalf("box B: %s%s", r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "FOUND") {
		t.Errorf("box B sees what box A left:\n%s", r.stdout)
	}
	a.Process.Kill()
	a.Wait()
	if !strings.Contains(aErr.String(), markHolder) {
		t.Fatalf("box A was not a spare's (the test is void):\n%s", aErr.String())
	}
}

// removeAsAnotherUser removes path, which anotherUser made, retrying for
// a while (a holder started there may still be going away).
func removeAsAnotherUser(t *testing.T, path string) {
	t.Helper()
	var out []byte
	var err error
	for i := 0; i < 50; i++ {
		if out, err = anotherUser(t, "rm", "-rf", path).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("removing %s: %v\n%s", path, err, out)
}

// startFake starts fake, a probe fake-holder or fake-listen, and waits
// until it listens; its whole output comes on the channel once it ends.
func startFake(t *testing.T, fake *exec.Cmd) <-chan string {
	t.Helper()
	out, err := fake.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	ready := make(chan bool, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
			b.WriteString(sc.Text() + "\n")
		}
		got <- b.String()
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		fake.Process.Kill()
		fake.Wait()
		t.Fatalf("the fake listener did not listen (the test is void):\n%s", <-got)
	}
	return got
}

// TestEscapeReplayRecordForged: a replay record is input. Another command
// line's record put in this one's place, a record that is a symbolic link
// to another one, and a record others may write are never replayed: the
// run is the CLI's, and it runs its own command.
func TestEscapeReplayRecordForged(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	rt, env := warmEnv(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	argsA := []string{"run", "--net", "none", img, "--", "echo", "command-a"}
	argsB := []string{"run", "--net", "none", img, "--", "echo", "command-b"}
	record := func(args []string) string {
		c := e.cmd(args...)
		// The environment devbox gets: os/exec keeps a name's last value.
		last := map[string]string{}
		for _, kv := range append(c.Env, env...) {
			k, _, _ := strings.Cut(kv, "=")
			last[k] = kv
		}
		var environ []string
		for _, kv := range last {
			environ = append(environ, kv)
		}
		return filepath.Join(warm.Dir(rt), warm.ReplayName(c.Args, warm.KeyEnviron(environ, c.Args), wd))
	}
	recA, recB := record(argsA), record(argsB)
	if recA == recB {
		t.Skip("both command lines fall in one bucket: change a word")
	}
	if r := viaReplay(t, e, env, argsA...); r.stdout != "command-a\n" {
		t.Fatalf("A replayed: %q", r.stdout)
	}
	a, err := os.ReadFile(recA)
	if err != nil {
		t.Fatalf("A's record (the test is void): %v", err)
	}
	runB := func(what string) {
		t.Helper()
		r := e.runEnv(env, argsB...)
		if r.stdout != "command-b\n" || strings.Contains(r.stderr, markReplay) {
			t.Errorf("%s: B printed %q (exit %d), replayed: %v", what, r.stdout, r.code, strings.Contains(r.stderr, markReplay))
		}
		os.Remove(recB) // the CLI's own record of B
	}
	os.Remove(recB)
	if err := os.WriteFile(recB, a, 0o600); err != nil {
		t.Fatal(err)
	}
	runB("A's record in B's place")
	if err := os.Symlink(recA, recB); err != nil {
		t.Fatal(err)
	}
	runB("B's record a link to A's")
	// A's own record, writable by others: not A's any more.
	if err := os.Chmod(recA, 0o666); err != nil {
		t.Fatal(err)
	}
	if r := e.runEnv(env, argsA...); r.stdout != "command-a\n" || strings.Contains(r.stderr, markReplay) {
		t.Errorf("a record others may write: %q, replayed: %v", r.stdout, strings.Contains(r.stderr, markReplay))
	}
}
