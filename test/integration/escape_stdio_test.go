//go:build integration

package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEscapeStdioFileReopened: a file the user gives a box as its stdin
// (`devbox run IMAGE < ~/.bashrc`) or appends its output to (`>> log`)
// is a descriptor in the box, and /proc/self/fd/N opens the file anew with
// the box's own rights: box root has CAP_DAC_OVERRIDE and CAP_FOWNER over
// the user's files (the user's uid and gid are mapped into the box). The
// probe appended a line to a read-only (0444) input file — a line of shell
// in ~/.bashrc would run on the host — made it 0666, and read back what
// the output file held before the run. From devbox run (cold, and warm:
// from a spare or a replay) and from sessions of a box with a home of its
// own (the first, through the CLI, and the next, through the front), the
// input file must stay exactly as it was, the output file keep its mode,
// and nothing of its earlier content reach the box; the box's output
// still reaches the file, stdout and stderr in order. Before the fix every
// case wrote the input file.
func TestEscapeStdioFileReopened(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	e.stopBoxesAtCleanup()
	in := filepath.Join(e.home, "input.txt")
	if err := os.WriteFile(in, []byte("CANARY-IN\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	inState := fileState(t, in)
	e.ok("create", "sio", "--image", img, "--home", sandboxHome(t), "--net", "none", "--grace", "60")
	attack := func(name string, env []string, args ...string) {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.log")
			if err := os.WriteFile(out, []byte("PRIOR-SECRET\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			stdin, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			stdout, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer stdout.Close()
			c := e.cmd(args...)
			c.Env = append(c.Env, env...)
			var stderr bytes.Buffer
			c.Stdin, c.Stdout, c.Stderr = stdin, stdout, &stderr
			if err := c.Run(); err != nil {
				t.Fatalf("devbox %v: %v\n%s", args, err, stderr.String())
			}
			t.Logf("probe stdio:\n%s", stderr.String())
			if !strings.Contains(stderr.String(), "fd0 fchmod") {
				t.Fatalf("the probe did not run (the test is void)")
			}
			if got := fileState(t, in); got != inState {
				t.Errorf("the input file changed:\nbefore %s\nafter  %s", inState, got)
			}
			if strings.Contains(stderr.String(), "PRIOR-SECRET") || strings.Contains(stderr.String(), "CANARY-IN") {
				t.Errorf("the box read back a file given as its stdin or stdout")
			}
			if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the output file's mode: %v %v, want 0600", fi.Mode(), err)
			}
			b, _ := os.ReadFile(out)
			if !strings.HasPrefix(string(b), "PRIOR-SECRET\n") {
				t.Errorf("the output file lost its earlier content: %q", b)
			}
		})
	}
	probe := []string{"--", "/probe", "stdio"}
	attack("run", []string{"DEVBOX_WARM=0"}, append([]string{"run", "--net", "none", img}, probe...)...)
	for _, n := range []string{"1", "2", "3"} {
		attack("run warm "+n, []string{"DEVBOX_WARM=1"}, append([]string{"run", "--net", "none", img}, probe...)...)
	}
	attack("exec, the box's start", nil, append([]string{"exec", "--root", "sio"}, probe...)...)
	attack("exec through the front", nil, append([]string{"exec", "--root", "sio"}, probe...)...)
	attack("exec as the user", nil, append([]string{"exec", "sio"}, probe...)...)

	// The output still arrives, in order, when stdout and stderr are one
	// file.
	out := filepath.Join(t.TempDir(), "both.log")
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := e.cmd("run", "--net", "none", img, "--", "sh", "-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2")
	c.Stdout, c.Stderr = f, f
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "1\n2\n3\n4\n" {
		t.Errorf("stdout and stderr to one file: %q, want 1 2 3 4 in order", b)
	}
}

// TestEscapeStdioBuildLog: devbox build runs a box file's hooks unasked,
// in a sandboxed box, with their output in the user's build log
// ($XDG_STATE_HOME/devbox/build/NAME.log). The log reached the hook as its
// stdout and stderr, and box root reopened it through /proc/self/fd: it
// read back what devbox had written there and made it 0666. The hook's
// output must still reach the log, but the log itself not the box.
func TestEscapeStdioBuildLog(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	img := probeImage(t, e)
	dir := filepath.Join(e.home, "cloned-log")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "devbox.toml")
	if err := os.WriteFile(file, []byte("[box.logged]\nimage = \""+img+"\"\non_create = [\"/probe stdio\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("build", "--no-cache", file)
	log := filepath.Join(e.home, ".local", "state", "devbox", "build", "logged.log")
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build log:\n%s", b)
	if !strings.Contains(string(b), "fd1 fchmod") {
		t.Fatalf("the hook's output is not in the build log (the test is void)")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "read back") && strings.Contains(l, "devbox build") {
			t.Errorf("the hook read the build log back: %s", l)
		}
	}
	if fi, err := os.Stat(log); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the build log's mode: %v %v, want 0600", fi.Mode(), err)
	}
}
