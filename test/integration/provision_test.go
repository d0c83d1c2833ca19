//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/test/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// aptRepo is the local trixie repository of test/provision.sh
// (DEVBOX_TEST_APTREPO, busybox httpd on 127.0.0.1:5080) as a box reaches
// it: through the host's loopback.
func aptRepo(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("DEVBOX_TEST_APTREPO")
	if addr == "" {
		addr = "127.0.0.1:5080"
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/Packages")
	if err != nil || resp.StatusCode != 200 {
		testutil.Skip(t, "no local apt repository at "+addr+" (run test/provision.sh as root, or make test)")
	}
	resp.Body.Close()
	_, port, _ := strings.Cut(addr, ":")
	return fmt.Sprintf("deb [trusted=yes] http://%s:%s/ ./", network.HostName, port)
}

// provisionEnv is newEnv with first-start provisioning on, from repo.
func provisionEnv(t *testing.T, repo string) *env {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	p := filepath.Join(e.config, "devbox", "config.toml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "[provision]\nauto = false\n", "", 1)
	cfg += fmt.Sprintf("[provision]\nauto = true\n[provision.repos]\napt = %q\n", repo)
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

type provisionRecord struct {
	Provision *struct {
		Time         time.Time `json:"time"`
		Manager      string    `json:"manager"`
		Installed    []string  `json:"installed"`
		Problem      string    `json:"problem"`
		Lang         string    `json:"lang"`
		LangFallback bool      `json:"langFallback"`
	} `json:"provision"`
	NoProvision bool     `json:"noProvision"`
	Devices     []string `json:"devices"`
}

func (e *env) provisionState(name string) provisionRecord {
	e.t.Helper()
	var r provisionRecord
	out := e.ok("inspect", name).stdout
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("inspect %s: %v: %s", name, err, out)
	}
	return r
}

// The first shell of a Debian box installs sudo, the caller's locale,
// less and ps from the local repository; sudo -n and the locale work in
// that very shell; the second shell installs nothing.
func TestProvisionApt(t *testing.T) {
	e := provisionEnv(t, aptRepo(t))
	lang := []string{"LANG=de_DE.UTF-8"}
	check := "sudo -n true && echo sudo-ok; locale charmap; ps -o comm= -p $$; command -v less; " +
		"test -e /var/lib/devbox-provision || echo no-leftover; grep -rl host.devbox.internal /etc/apt || echo sources-untouched"
	want := "sudo-ok\nUTF-8\nsh\n/usr/bin/less\nno-leftover\nsources-untouched"
	t0 := time.Now()
	r := e.runEnv(lang, "shell", "--image", "debian", "prov", "--", "sh", "-c", check)
	first := time.Since(t0)
	if r.code != 0 || strings.TrimSpace(r.stdout) != want {
		t.Fatalf("first shell: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "devbox: box prov: first start: installing sudo, locales, less, procps with apt-get (log: ") ||
		!strings.Contains(r.stderr, "ready in") || strings.Contains(r.stderr, "warning") || strings.Contains(r.stderr, "setlocale") {
		t.Errorf("first shell's stderr:\n%s", r.stderr)
	}
	st := e.provisionState("prov")
	p := st.Provision
	if p == nil || p.Manager != "apt-get" || strings.Join(p.Installed, " ") != "sudo locales less procps" || p.Lang != "de_DE.UTF-8" || p.LangFallback || p.Problem != "" {
		t.Fatalf("record: %+v", p)
	}
	t.Logf("first shell with provisioning: %v", first)

	t0 = time.Now()
	r = e.runEnv(lang, "shell", "prov", "--", "sh", "-c", check)
	if r.code != 0 || strings.TrimSpace(r.stdout) != want || strings.Contains(r.stderr, "installing") {
		t.Fatalf("second shell: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if again := e.provisionState("prov").Provision; again == nil || !again.Time.Equal(p.Time) {
		t.Errorf("the second shell provisioned again: %+v", again)
	}
	t.Logf("second shell: %v", time.Since(t0))

	// --reprovision for another locale installs only that.
	r = e.runEnv([]string{"LANG=fr_FR.UTF-8"}, "shell", "--reprovision", "prov", "--", "sh", "-c", "locale charmap")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "UTF-8" || !strings.Contains(r.stderr, "installing locales with apt-get") {
		t.Errorf("--reprovision: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// Repositories that cannot be reached: one line that names the log, a
// shell that works (LANG falls back to C.UTF-8), and no second attempt.
func TestProvisionUnreachable(t *testing.T) {
	aptRepo(t)
	// Port 1 of the host's loopback: nothing listens there.
	e := provisionEnv(t, fmt.Sprintf("deb [trusted=yes] http://%s:1/ ./", network.HostName))
	lang := []string{"LANG=de_DE.UTF-8"}
	r := e.runEnv(lang, "shell", "--image", "debian", "offline", "--", "sh", "-c", `echo "$LANG"; command -v sudo || echo no-sudo`)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "C.UTF-8\nno-sudo" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "could not install") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "unreachable") || !strings.Contains(lines[0], "provision.log") ||
		!strings.Contains(lines[0], "hint: devbox shell --reprovision offline") {
		t.Errorf("want one line that says why and names the log:\n%s", r.stderr)
	}
	if strings.Count(r.stderr, "LANG=C.UTF-8") != 1 {
		t.Errorf("want one fallback warning:\n%s", r.stderr)
	}
	logPath := lines[0][strings.Index(lines[0], "(log: ")+6:]
	logPath = logPath[:strings.Index(logPath, ";")]
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "apt-get") {
		t.Errorf("log %s: %v\n%s", logPath, err, b)
	}
	r = e.runEnv(lang, "shell", "offline", "--", "true")
	if r.code != 0 || r.stderr != "" {
		t.Errorf("second shell: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// An image without a package manager (busybox) says so once and goes on;
// --no-provision says nothing and installs nothing.
func TestProvisionNone(t *testing.T) {
	e := provisionEnv(t, aptRepo(t))
	r := e.run("shell", "--image", "busybox", "bb", "--", "echo", "in")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "in" || strings.Count(r.stderr, "no package manager") != 1 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if p := e.provisionState("bb").Provision; p == nil || p.Manager != "" || p.Problem == "" {
		t.Errorf("record: %+v", p)
	}
	if r := e.run("shell", "bb", "--", "true"); r.code != 0 || r.stderr != "" {
		t.Errorf("second shell: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	e.ok("create", "--no-provision", "--image", "debian", "np")
	r = e.run("shell", "np", "--", "sh", "-c", "command -v sudo || echo no-sudo")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "no-sudo" || r.stderr != "" {
		t.Errorf("--no-provision: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if st := e.provisionState("np"); !st.NoProvision || st.Provision != nil {
		t.Errorf("--no-provision record: %+v", st)
	}
	// --reprovision is asked for: it runs even there.
	e.ok("create", "--no-provision", "--image", "busybox", "np2")
	if r := e.run("shell", "--reprovision", "np2", "--", "true"); r.code != 0 || !strings.Contains(r.stderr, "no package manager") {
		t.Errorf("--reprovision of a --no-provision box: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	// A sandboxed box is never provisioned; asking is an error.
	e.ok("create", "--home", filepath.Join(filepath.Dir(e.home), "sandhome"), "--image", "busybox", "sb")
	if r := e.run("shell", "sb", "--", "true"); r.code != 0 || r.stderr != "" {
		t.Errorf("sandboxed box: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r := e.run("shell", "--reprovision", "sb", "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "only dev boxes are provisioned") {
		t.Errorf("--reprovision of a sandboxed box: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// An image without /bin/sh (only a static program): provisioning says so
// once and the command runs.
func TestProvisionNoShell(t *testing.T) {
	e := provisionEnv(t, aptRepo(t))
	bin, err := os.ReadFile(testutil.ProbeBin(t))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "probe", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	ref := e.registry + "/devbox-test/noshell:" + d.Hex[:12]
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	res := e.run("shell", "--image", ref, "noshell", "--", "/probe", "device", "/dev/null")
	if res.code != 0 || res.stdout != "open: ok\n" || strings.Count(res.stderr, "no working /bin/sh") != 1 {
		t.Fatalf("exit %d\nstdout %q\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	if res := e.run("shell", "noshell", "--", "/probe", "device", "/dev/null"); res.code != 0 || res.stderr != "" {
		t.Errorf("second shell: exit %d, stderr:\n%s", res.code, res.stderr)
	}
}
