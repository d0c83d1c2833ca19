//go:build integration

package integration

// A box from the warm path (a warm holder's spare, internal/holder, asked
// by a replay or by the CLI) must be byte-for-byte the box a cold start
// gives (issue 15): test/probe's dump, run in both, compared after
// normalisation.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/devbox-dev/devbox/internal/warm"
	"golang.org/x/sys/unix"
)

// The knob and trace marks of the warm path, in one place.
const (
	// coldEnv turns the warm path off.
	coldEnv = warm.Knob + "=0"
	// traceEnv makes devbox print its milestones on stderr.
	traceEnv = "DEVBOX_TRACE=1"
	// markHolder: a holder's spare became the run's init.
	markHolder = "warm: via holder, pid "
	// markReplay: the run was replayed from a record, without the CLI.
	markReplay = "warm: replaying"
)

// warmPath is one way a warm start happens: the trace marks it must show
// and those it must not.
type warmPath struct {
	name      string
	want, not []string
	// nonce: each run gets another command line (no replay), same flags.
	nonce bool
	// known are the differences from a cold start this path has today:
	// the comparison leaves them out, and fails when one is gone (then
	// delete it here).
	known []knownDifference
}

// knownDifference is a difference between a warm and a cold box that is
// understood and not fixed yet: the dump lines with one of some prefixes.
type knownDifference struct {
	name     string
	prefixes []string
}

// split returns the lines of dump d that k concerns, and the others.
func (k knownDifference) split(d string) (in, out string) {
	var a, b strings.Builder
	for _, l := range strings.SplitAfter(d, "\n") {
		if slices.ContainsFunc(k.prefixes, func(p string) bool { return strings.HasPrefix(l, p) }) {
			a.WriteString(l)
		} else {
			b.WriteString(l)
		}
	}
	return a.String(), b.String()
}

// softNoFile: the Go runtime raises its soft limit on open files to the
// hard one before any of devbox's code runs, and gives the original back
// only to the children it starts; a holder's spare, started by another
// run, has that run's (docs/architecture.md, "Warm holder"). The
// fingerprint cannot tell them apart.
var softNoFile = knownDifference{name: "soft limit on open files", prefixes: []string{"/proc/self/limits:Max open files "}}

// initCmdline: the box reads its init's command line in /proc/1/cmdline:
// a spare's is "devbox-init spare" (a process cannot change its own
// without CAP_SYS_RESOURCE), a cold start's init's names the spec's
// descriptor and the box directory.
var initCmdline = knownDifference{name: "the init's command line", prefixes: []string{"init: cmdline: "}}

var (
	// The same command line again: replayed, through the holder.
	replayHeld = warmPath{name: "replay via holder", want: []string{markReplay, markHolder}, known: []knownDifference{initCmdline}}
	// Same flags, another command line: the CLI's start, served by the
	// holder.
	cliHeld = warmPath{name: "CLI via holder", want: []string{markHolder}, not: []string{markReplay}, nonce: true,
		known: []knownDifference{initCmdline}}
	// With a terminal the warm path is off (a spare lives in the
	// holder's session): the warm path on, such a run must still be a
	// cold start's box, and its trace shows no warm start (when it
	// does, give the case the paths above).
	notWarm = warmPath{name: "warm path on, a terminal", not: []string{markHolder, markReplay}}
	// A box whose filter allows keyctl is never a spare's: boxes of one
	// holder share its user namespace's user keyrings
	// (TestEscapeWarmKeyringShared).
	notWarmKeyctl = warmPath{name: "warm path on, keyctl allowed", not: []string{markHolder, markReplay}}
)

// shellView runs the probe's dump after what only a program that is not Go
// can see: the soft limit on open files (the Go runtime raises it at
// start) and the signals blocked and ignored (it handles most). grep is a
// child of sh, which the box's init started: it has what sh has.
const shellView = `grep -H -E '^(SigBlk|SigIgn|Max open files)' /proc/self/status /proc/self/limits; exec /probe dump "$@"`

// TestWarmStartIsColdStart: for each kind of run, the probe's dump from a
// box that a warm path started equals the dump from a cold start; two cold
// starts agree with each other (or the normalisation would hide nothing
// and prove nothing), and a warm path that never serves the run fails the
// test.
func TestWarmStartIsColdStart(t *testing.T) {
	// Descriptors this test inherited without close-on-exec would reach a
	// cold start's init (devbox passes them on), not a holder's spare: a
	// difference of the test's environment, not of devbox.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	const busybox, debian = "library/busybox:1", "library/debian:13"
	images := map[string]string{} // base → the probe image made from it
	rt := t.TempDir()
	if err := os.Chmod(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{traceEnv, "XDG_RUNTIME_DIR=" + rt, warm.IdleEnv + "=30"}
	hostNS := hostNamespaces(t)
	for _, tc := range []struct {
		name  string
		base  string
		flags []string
		tty   bool
		paths []warmPath
		// caller: a sh script that runs devbox ("$0" "$@") as its caller
		// would.
		caller string
		// warmUp: runs without caller before each path's, so that a
		// holder started by another caller serves them.
		warmUp bool
	}{
		{name: "net none", base: busybox, flags: []string{"--net", "none"}, paths: []warmPath{replayHeld, cliHeld}},
		{name: "default network", base: busybox, paths: []warmPath{replayHeld, cliHeld}},
		{name: "net none terminal", base: busybox, flags: []string{"-t", "--net", "none"}, tty: true, paths: []warmPath{notWarm}},
		{name: "default network terminal", base: busybox, flags: []string{"-t"}, tty: true, paths: []warmPath{notWarm}},
		{name: "capabilities", base: busybox, flags: []string{"--net", "none", "--cap-add", "SYS_PTRACE", "--cap-add", "NET_ADMIN"},
			paths: []warmPath{replayHeld, cliHeld}},
		{name: "seccomp unconfined", base: busybox, flags: []string{"--net", "none", "--cap-add", "SYS_PTRACE", "--security-opt", "seccomp=unconfined"},
			paths: []warmPath{notWarmKeyctl}},
		{name: "no new privileges off", base: busybox, flags: []string{"--net", "none", "--cap-add", "ALL",
			"--security-opt", "no-new-privileges=false"}, paths: []warmPath{replayHeld}},
		// The caller's soft limit on open files is lower than the
		// holder's starter's (the warm-up runs have the test's), and it
		// ignores SIGINT and SIGQUIT, as sh does for a command started
		// with &.
		{name: "lower soft limit, signals ignored", base: busybox, flags: []string{"--net", "none"},
			caller: `trap "" INT QUIT; ulimit -S -n 1000; exec "$0" "$@"`, warmUp: true,
			paths: []warmPath{held(replayHeld, softNoFile), held(cliHeld, softNoFile)}},
		{name: "debian", base: debian, flags: []string{"--net", "none"}, paths: []warmPath{replayHeld, cliHeld}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, ok := images[tc.base]
			if !ok {
				img = probeImageOn(t, e, tc.base)
				images[tc.base] = img
			}
			dump := func(extra []string, nonce string) (string, string) {
				t.Helper()
				args := append([]string{"run"}, tc.flags...)
				args = append(append(args, img, "--", "/bin/sh", "-c", shellView, "sh"), hostNS...)
				if nonce != "" {
					args = append(args, "nonce="+nonce)
				}
				return probeDump(t, e, append(slices.Clone(env), extra...), tc.tty, tc.caller, args)
			}
			cold, _ := dump([]string{coldEnv}, "")
			if again, _ := dump([]string{coldEnv}, "cold"); again != cold {
				t.Fatalf("two cold starts differ: the dump is not stable\n%s", lineDiff("cold", "cold again", cold, again))
			}
			t.Logf("the dump: %d lines", strings.Count(cold, "\n"))
			if tc.name == "capabilities" {
				t.Logf("the cold start's dump:\n%s", cold)
			}
			for _, p := range tc.paths {
				if tc.warmUp {
					// Right before: the holder must still be there
					// (under TCG a case takes longer than its idle
					// time), or the runs below start their own.
					saved := tc.caller
					tc.caller = ""
					for i := 0; i < 2; i++ {
						dump(nil, "warm-up"+strconv.Itoa(i))
					}
					tc.caller = saved
				}
				served := false
				for i := 0; i < 5 && !served; i++ {
					nonce := ""
					if p.nonce {
						nonce = p.name + strconv.Itoa(i)
					}
					got, trace := dump(nil, nonce)
					if !p.took(trace) {
						continue
					}
					served = true
					c := cold
					for _, k := range p.known {
						inCold, restCold := k.split(c)
						inGot, restGot := k.split(got)
						if inCold == inGot {
							t.Errorf("%s: known difference %q is gone: delete it from the path", p.name, k.name)
						} else {
							t.Logf("%s: known difference %q:\n%s", p.name, k.name, lineDiff("cold", p.name, inCold, inGot))
						}
						c, got = restCold, restGot
					}
					if got != c {
						t.Errorf("%s: the box differs from a cold start's\n%s", p.name, lineDiff("cold", p.name, c, got))
					}
				}
				if !served {
					t.Errorf("%s: five runs, none took this path (trace marks %q, without %q)", p.name, p.want, p.not)
				}
			}
		})
	}
}

// held is path p with more known differences.
func held(p warmPath, k ...knownDifference) warmPath {
	p.known = append(slices.Clone(p.known), k...)
	return p
}

// took reports whether a run's trace shows path p.
func (p warmPath) took(trace string) bool {
	for _, m := range p.want {
		if !strings.Contains(trace, m) {
			return false
		}
	}
	for _, m := range p.not {
		if strings.Contains(trace, m) {
			return false
		}
	}
	return true
}

// hostNamespaces are the probe's "NAME=LINK" arguments: this process's
// namespaces.
func hostNamespaces(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/ns")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ent := range ents {
		l, err := os.Readlink("/proc/self/ns/" + ent.Name())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ent.Name()+"="+l)
	}
	return out
}

// probeDump runs devbox with args (a probe dump), from the sh script
// caller unless it is "", and returns the dump and devbox's stderr (the
// trace). With tty, stdin and stdout are a terminal's (the dump is read
// from its master, line ends as written).
func probeDump(t *testing.T, e *env, env []string, tty bool, caller string, args []string) (string, string) {
	t.Helper()
	c := e.cmd(args...)
	if caller != "" {
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Fatal(err)
		}
		c.Path, c.Args = sh, append([]string{"sh", "-c", caller, e.bin}, args...)
	}
	c.Env = append(c.Env, env...)
	var stdout, stderr bytes.Buffer
	c.Stderr = &stderr
	done := make(chan error, 1)
	if tty {
		master, slave := openPTY(t)
		defer master.Close()
		c.Stdin, c.Stdout = slave, slave
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		go func() {
			_, err := io.Copy(&stdout, master)
			done <- err
		}()
	} else {
		c.Stdout = &stdout
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done <- nil
	}
	err := c.Wait()
	// The master reads EIO once no process holds the terminal.
	if rerr := <-done; rerr != nil && !errors.Is(rerr, syscall.EIO) {
		t.Fatalf("reading the terminal: %v", rerr)
	}
	out := strings.ReplaceAll(stdout.String(), "\r\n", "\n")
	if err != nil || !strings.Contains(out, "\nmount: ") {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("devbox %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out, stderr.String()
}

// lineDiff is a unified diff (without hunk headers: the whole text is one
// hunk, unchanged lines elided to three of context) of a and b.
func lineDiff(an, bn, a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// Longest common subsequence, by dynamic programming from the end.
	l := make([][]int, len(x)+1)
	for i := range l {
		l[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var ops []line
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, line{' ', x[i]})
			i++
			j++
		case j < len(y) && (i == len(x) || l[i][j+1] >= l[i+1][j]):
			ops = append(ops, line{'+', y[j]})
			j++
		default:
			ops = append(ops, line{'-', x[i]})
			i++
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", an, bn)
	elided := false
	for k, o := range ops {
		near := false
		for d := max(0, k-3); d <= min(len(ops)-1, k+3); d++ {
			near = near || ops[d].op != ' '
		}
		if !near {
			if !elided {
				sb.WriteString("…\n")
			}
			elided = true
			continue
		}
		elided = false
		fmt.Fprintf(&sb, "%c%s\n", o.op, o.text)
	}
	return sb.String()
}
