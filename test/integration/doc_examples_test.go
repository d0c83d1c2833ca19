//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/factory"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/cmd/root"
	"github.com/devbox-dev/devbox/test/docs"
)

// docAliases map the distro names the docs use to the offline images.
const docAliases = `
[aliases]
centos = "docker.io/library/debian:13"
fedora = "docker.io/library/debian:13"
ubuntu = "docker.io/library/debian:13"
alpine = "docker.io/library/busybox:1"
`

// TestDocExamples runs every example of README.md, docs/*.md and devbox
// --help (test/docs: the extraction, and the table of what each must
// show) as the unprivileged user, each in a fresh environment.
func TestDocExamples(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	found, err := docs.Extract(filepath.Join("..", ".."), root.NewCmdRoot(factory.New(ios, slog.Default())))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range found {
		if !slices.Contains(keys, f.Text) {
			keys = append(keys, f.Text)
		}
	}
	_, noCgroups := cgroup.Decide(cgroup.DetectHost(), cgroup.Limits{PidsLimit: 1 << 20})
	for _, k := range keys {
		ex, ok := docs.Examples[k]
		if !ok {
			t.Errorf("example %q has no row in test/docs/examples.go", k)
			continue
		}
		t.Run(k, func(t *testing.T) { runDocExample(t, k, ex, noCgroups != nil) })
	}
}

func runDocExample(t *testing.T, text string, ex docs.Example, noCgroups bool) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	cfg := filepath.Join(e.config, "devbox", "config.toml")
	old, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(old, docAliases...), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	work := filepath.Join(e.home, "work")
	os.MkdirAll(filepath.Join(work, "bin"), 0o755)
	for _, l := range []string{filepath.Join(bin, "devbox"), filepath.Join(work, "bin", "devbox")} {
		if err := os.Symlink(e.bin, l); err != nil {
			t.Fatal(err)
		}
	}
	me, _ := user.Current()
	subst := strings.NewReplacer("{HOME}", e.home, "{WORK}", work, "{USER}", me.Username, "{PORT}", strconv.Itoa(freePort(t))).Replace
	environ := append(e.environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	sh := func(line string) *exec.Cmd {
		c := exec.Command("sh", "-c", line)
		c.Env, c.Dir = environ, work
		return c
	}
	for _, s := range ex.Setup {
		if out, err := sh(subst(s)).CombinedOutput(); err != nil {
			t.Fatalf("setup %q: %v\n%s", subst(s), err, out)
		}
	}
	line := text
	if ex.Run != "" {
		line = ex.Run
	}
	line = subst(line)
	c := sh(line)
	c.Stdin = strings.NewReader(ex.Stdin)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if ex.Background {
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
			c.Wait()
		}()
	} else {
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		want := ex.Outcome
		if noCgroups && ex.NoCgroup != nil {
			want = *ex.NoCgroup
		}
		codes := want.Codes
		if len(codes) == 0 {
			codes = []int{0}
		}
		var bad []string
		if !slices.Contains(codes, code) {
			bad = append(bad, fmt.Sprintf("exit %d, want %v", code, codes))
		}
		for _, s := range want.Stdout {
			if !strings.Contains(stdout.String(), subst(s)) {
				bad = append(bad, fmt.Sprintf("stdout lacks %q", subst(s)))
			}
		}
		for _, s := range want.Stderr {
			if !strings.Contains(stderr.String(), subst(s)) {
				bad = append(bad, fmt.Sprintf("stderr lacks %q", subst(s)))
			}
		}
		if strings.Contains(stderr.String(), "goroutine ") {
			bad = append(bad, "a panic")
		}
		if len(bad) > 0 {
			t.Fatalf("the example %q (%s) ran as %q: %s\nstdout: %s\nstderr: %s", text, ex.Says, line, strings.Join(bad, "; "), stdout.String(), stderr.String())
		}
		if noCgroups && ex.NoCgroup != nil {
			return // what follows needs the limits applied
		}
	}
	if ex.Probe == "" {
		return
	}
	probe, want := subst(ex.Probe), subst(ex.ProbeOut)
	var out []byte
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err = sh(probe).CombinedOutput()
		if err == nil && bytes.Contains(out, []byte(want)) {
			return
		}
	}
	t.Fatalf("the example %q (%s) ran as %q; then %q: %v %q, want %q\nexample's stdout: %s\nstderr: %s", text, ex.Says, line, probe, err, out, want, stdout.String(), stderr.String())
}
