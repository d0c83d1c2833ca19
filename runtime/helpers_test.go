package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/test/testutil"
)

// TestMain lets the test binary play every devbox process: the namespace
// helpers and the box init re-execute /proc/self/exe, which is this binary.
func TestMain(m *testing.M) {
	switch st := rootless.CurrentStage(); {
	case st == "init":
		forceRootfs = os.Getenv("DEVBOX_TEST_ROOTFS")
		os.Exit(InitMain())
	case st == StageLockRO:
		os.Exit(LockROMain())
	case st == "noop":
		os.Exit(0)
	case st == "rmtree":
		// Removes a box directory as root of the user namespace, which may
		// delete the subordinate-id owned files the test user cannot.
		if err := os.RemoveAll(os.Args[1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// quickRaceExit spares each helper process of a -race build the race
// runtime's one-second sleep at exit.
const quickRaceExit = "GORACE=atexit_sleep_ms=0"

// applets are the busybox commands the test image links in /bin.
var applets = []string{
	"sh", "ls", "cat", "id", "ps", "hostname", "mount", "umount", "echo",
	"sleep", "touch", "stat", "tty", "stty", "env", "true", "false", "kill",
	"readlink", "ip", "grep", "wc", "mkdir", "rm", "head", "tr", "printf",
	"test", "cut", "sed", "pwd", "tail", "chmod", "chown", "ln", "sort",
}

// fixture is an image (one layer built from the host's static busybox) and
// a box directory, for one unprivileged test.
type fixture struct {
	t      testing.TB
	m      rootless.Mapping
	layer  string   // the image's (bottom) layer
	layers []string // all layers, top-most first
	dir    string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	m, err := rootless.Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.RequireUnprivilegedUserns(t, !m.Single())
	f := &fixture{t: t, m: m, layer: t.TempDir(), dir: t.TempDir()}
	buildImage(t, f.layer, m)
	f.layers = []string{f.layer}
	t.Cleanup(func() { f.rmtree(f.dir) })
	return f
}

// rmtree deletes dir from inside the user namespace.
func (f *fixture) rmtree(dir string) {
	var out bytes.Buffer
	code, err := rootless.Run(rootless.Spec{Stage: "rmtree", Args: []string{dir}, Env: []string{quickRaceExit}, Mapping: f.m, Stdout: &out, Stderr: &out})
	if err != nil || code != 0 {
		f.t.Errorf("removing %s: code %d err %v %s", dir, code, err, out.String())
	}
}

// buildImage writes a minimal image into dir: busybox and its applets,
// /etc/passwd and /etc/group with root and the test user (m.UID).
func buildImage(t testing.TB, dir string, m rootless.Mapping) {
	t.Helper()
	for _, d := range []string{"bin", "etc", "root", "tmp", "proc", "sys", "dev", "home/" + testUserName(m)} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyTestFile(t, "/bin/busybox", filepath.Join(dir, "bin/busybox"), 0o755)
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	name := testUserName(m)
	writeFile(t, filepath.Join(dir, "etc/passwd"), fmt.Sprintf(
		"root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d:test user:/home/%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		name, m.UID, m.GID, name))
	writeFile(t, filepath.Join(dir, "etc/group"), fmt.Sprintf(
		"root:x:0:\ntty:x:5:\nwheel:x:10:%s\nstaff:x:50:other,%s\n%s:x:%d:\nnogroup:x:65534:\n",
		name, name, name, m.GID))
	writeFile(t, filepath.Join(dir, "etc/motd"), "from the image\n")
}

func testUserName(m rootless.Mapping) string {
	if m.User != "" {
		return m.User
	}
	return "tester"
}

func copyTestFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// spec returns a box spec running args in the fixture's image.
func (f *fixture) spec(args ...string) *Spec {
	return &Spec{
		Version:      SpecVersion,
		ID:           "0123456789abcdef",
		Lowers:       f.layers,
		ContainerDir: f.dir,
		Args:         args,
		Env:          []string{"PATH=/bin", "LANG=C.UTF-8"},
		Hostname:     "devbox-test",
		Net:          "none",
		Hosts:        "127.0.0.1 localhost devbox-test\n",
		ResolvConf:   "nameserver 192.0.2.53\n",
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs the box init for s through rootless, as devbox run does.
func (f *fixture) run(s *Spec, stdin io.Reader, initEnv ...string) result {
	f.t.Helper()
	var stdout, stderr bytes.Buffer
	p, err := f.start(s, stdin, &stdout, &stderr, nil, initEnv...)
	if err != nil {
		f.t.Fatal(err)
	}
	code, err := p.Wait()
	if err != nil {
		f.t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func (f *fixture) start(s *Spec, stdin io.Reader, stdout, stderr io.Writer, extra []*os.File, initEnv ...string) (*rootless.Process, error) {
	specPath := filepath.Join(f.t.TempDir(), "spec.json")
	if err := WriteSpec(specPath, s); err != nil {
		return nil, err
	}
	return rootless.Start(rootless.Spec{
		Stage:      "init",
		Args:       []string{specPath},
		Env:        append(initEnv, quickRaceExit),
		Namespaces: rootless.Namespaces{Mount: true, PID: true, UTS: true, IPC: true, Net: s.Net != "host"},
		Mapping:    f.m,
		Stdin:      stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		ExtraFiles: extra,
	})
}

// mustRun runs s and fails the test unless it exits 0.
func (f *fixture) mustRun(s *Spec) result {
	f.t.Helper()
	r := f.run(s, nil)
	if r.code != 0 {
		f.t.Fatalf("%q: %s", s.Args, r)
	}
	return r
}

// sh runs a shell script in the box as root and returns its stdout.
func (f *fixture) sh(script string) string {
	f.t.Helper()
	return f.mustRun(f.spec("sh", "-c", script)).stdout
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// live is a running box whose stdout is read line by line.
type live struct {
	t      testing.TB
	p      *rootless.Process
	stdin  io.WriteCloser
	lines  chan string
	stderr *bytes.Buffer
	out    strings.Builder
}

// startLive starts s with a pipe as stdin.
func (f *fixture) startLive(s *Spec, initEnv ...string) *live {
	f.t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	l := &live{t: f.t, stdin: inW, lines: make(chan string, 100), stderr: &bytes.Buffer{}}
	p, err := f.start(s, inR, outW, l.stderr, nil, initEnv...)
	if err != nil {
		f.t.Fatal(err)
	}
	l.p = p
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
		close(l.lines)
	}()
	f.t.Cleanup(func() {
		inW.Close()
		outW.Close()
	})
	return l
}

// waitFor reads stdout until a line equal to marker and returns what came
// before it.
func (l *live) waitFor(marker string) string {
	l.t.Helper()
	var before []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				l.t.Fatalf("box stdout ended before %q: %q", marker, before)
			}
			if line == marker {
				return strings.Join(before, "\n")
			}
			before = append(before, line)
		case <-timeout:
			l.t.Fatalf("timed out waiting for %q", marker)
		}
	}
}

// finish closes the box's stdin and returns its exit code.
func (l *live) finish() int {
	l.t.Helper()
	l.stdin.Close()
	code, err := l.p.Wait()
	if err != nil {
		l.t.Fatal(err)
	}
	return code
}
