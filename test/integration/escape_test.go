//go:build integration

package integration

// The escape suite (issue 13, docs/security.md): every test is an attack a
// hostile image could make from a plain `devbox run`, carried out by
// test/probe inside the box, and asserts that the host stayed untouched.

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/test/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// probeImage pushes busybox with test/probe as /probe to the test registry
// and returns its reference.
func probeImage(t *testing.T, e *env) string {
	t.Helper()
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
	bimg := registryBusybox(t, e)
	img, err := mutate.AppendLayers(bimg, l)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	ref := e.registry + "/devbox-test/probe:" + d.Hex[:12]
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	e.ok("pull", "-q", ref)
	return ref
}

// registryBusybox reads busybox from the test registry.
func registryBusybox(t *testing.T, e *env) v1.Image {
	t.Helper()
	base, err := name.ParseReference(e.registry+"/library/busybox:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	bimg, err := remote.Image(base)
	if err != nil {
		t.Fatalf("reading busybox from the test registry: %v", err)
	}
	return bimg
}

// fileCanary is a file an escaped box would find and change.
type fileCanary struct {
	path, name, content string
}

func plantCanary(t *testing.T, dir string) fileCanary {
	t.Helper()
	var r [8]byte
	rand.Read(r[:])
	c := fileCanary{name: "devbox-canary-" + hex.EncodeToString(r[:])}
	c.path = filepath.Join(dir, c.name)
	c.content = "untouched " + c.name + "\n"
	if err := os.WriteFile(c.path, []byte(c.content), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c fileCanary) check(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(c.path)
	if err != nil || string(b) != c.content {
		t.Errorf("canary %s was changed from the box: %q %v", c.path, b, err)
	}
}

// lines returns the "KEY: value" lines of a probe's output.
func lines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			m[k] = v
		}
	}
	return m
}

// TestEscapeInheritedFDs: the box walks ".." from every descriptor, cwd
// and root of every process it can see (the init's among them) and looks
// for canaries in the store's parent and in the user's home. Before the
// fix, /proc/1/fd/N led from the box directory the init kept open to the
// user's home.
func TestEscapeInheritedFDs(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	up := plantCanary(t, filepath.Dir(e.data)) // above the store
	home := plantCanary(t, e.home)
	for _, tc := range []struct {
		name string
		args []string
		conf string
	}{
		{name: "default"},
		// With tracing allowed, /proc/1/fd is open to the box: what the
		// init holds must still lead nowhere.
		{name: "cap-add SYS_PTRACE", args: []string{"--cap-add", "SYS_PTRACE"}},
		{name: "every capability", args: []string{"--cap-add", "ALL", "--security-opt", "seccomp=unconfined"}},
		{name: "scratch on disk", args: []string{"--cap-add", "SYS_PTRACE"}, conf: "[run]\nscratch = \"disk\"\n"},
		{name: "kept", args: []string{"--cap-add", "SYS_PTRACE", "--keep"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.conf != "" {
				e.setConfig(tc.conf)
				defer e.setConfig("")
			}
			for _, c := range []fileCanary{up, home} {
				args := append([]string{"run", "--net", "none"}, tc.args...)
				args = append(args, img, "--", "/probe", "fds", c.name)
				r := e.run(args...)
				if r.code != 0 || !strings.Contains(r.stdout, "walked: ") {
					t.Fatalf("probe fds: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
				}
				if strings.Contains(r.stdout, "ESCAPED") {
					t.Errorf("the box reached a host file:\n%s", r.stdout)
				}
				c.check(t)
			}
		})
	}
}

// TestEscapePtraceInit: the box's root tries to trace its init (which
// holds the box's lock, its status pipe and network socket) and to read
// its memory and environment.
func TestEscapePtraceInit(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	r := e.ok("run", "--net", "none", img, "--", "/probe", "ptrace")
	m := lines(r.stdout)
	for _, k := range []string{"attach", "seize", "open /proc/1/mem", "open /proc/1/environ"} {
		if v, ok := m[k]; !ok || v == "ok" {
			t.Errorf("%s of the init from the box: %q (want a refusal)\n%s", k, v, r.stdout)
		}
	}
}

// TestEscapeTIOCSTI: without a box pty (-T) the command's stdio is the
// caller's terminal; it pushes a command line into that terminal's input,
// which the caller's shell would run after devbox exits. With a box pty it
// can only type into its own terminal.
func TestEscapeTIOCSTI(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	legacy, _ := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti")
	t.Logf("dev.tty.legacy_tiocsti = %s", strings.TrimSpace(string(legacy)))
	const marker = "echo devbox-tiocsti-injected"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "no box pty", args: []string{"-T"}},
		// The session alone, without the filter's TIOCSTI rule.
		{name: "no box pty, no seccomp", args: []string{"-T", "--security-opt", "seccomp=unconfined"}},
		{name: "box pty", args: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, slave := openPTY(t)
			defer master.Close()
			defer slave.Close()
			args := append([]string{"run", "--net", "none"}, tc.args...)
			args = append(args, img, "--", "/probe", "tiocsti", marker+"\n")
			c := e.cmd(args...)
			c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
			// The caller's shell: the pty is devbox's controlling
			// terminal, as in a user's session.
			c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			var out bytes.Buffer
			done := make(chan struct{})
			go func() { io.Copy(&out, master); close(done) }()
			if err := c.Run(); err != nil {
				t.Logf("devbox: %v", err)
			}
			// What devbox printed reached the master; what was pushed
			// into the input queue is what the shell would read now.
			// (Fd puts the file in blocking mode: once, then non-blocking.)
			sfd := int(slave.Fd())
			unix.SetNonblock(sfd, true)
			time.Sleep(100 * time.Millisecond)
			buf := make([]byte, 4096)
			n, _ := unix.Read(sfd, buf)
			injected := string(buf[:max(n, 0)])
			master.SetReadDeadline(time.Now())
			slave.Close()
			<-done
			t.Logf("probe:\n%s", out.String())
			if strings.Contains(injected, "devbox-tiocsti") {
				t.Errorf("the box typed into the caller's terminal: %q", injected)
			}
			if tc.args != nil && strings.Contains(out.String(), "fd0: ok") {
				t.Errorf("TIOCSTI on the caller's terminal succeeded:\n%s", out.String())
			}
		})
	}
}

// openPTY returns a new pty pair.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestEscapeKeyring: the caller has a secret in its session keyring and in
// its user keyring; the box looks for it.
func TestEscapeKeyring(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	desc := canaryKeys(t)
	res := e.ok("run", "--net", "none", img, "--", "/probe", "keys", desc)
	if strings.Contains(res.stdout, "FOUND") {
		t.Errorf("the box found the caller's key:\n%s", res.stdout)
	}
	if !strings.Contains(res.stdout, "session") {
		t.Fatalf("probe keys printed nothing useful:\n%s", res.stdout)
	}
}

// TestEscapeMasks: the box's root tries to take away the masks over /proc
// and /sys, or to mount a fresh proc or sysfs beside them.
func TestEscapeMasks(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	checkMasks(t, e.ok("run", "--net", "none", img, "--", "/probe", "masks").stdout)
}

// checkMasks fails t unless every attack of probe masks (output out) was
// refused.
func checkMasks(t *testing.T, out string) {
	t.Helper()
	n := 0
	for k, v := range lines(out) {
		if strings.HasPrefix(k, "umount ") || strings.HasPrefix(k, "remount-rw ") || strings.HasPrefix(k, "mount ") || strings.HasPrefix(k, "unshare") || strings.HasPrefix(k, "open /proc/sysrq") {
			n++
			if v == "ok" {
				t.Errorf("%s from the box succeeded", k)
			}
		}
	}
	if n < 8 || !strings.Contains(out, "read /proc/kcore: 0 bytes") {
		t.Errorf("probe masks:\n%s", out)
	}
}

// canaryKeys adds a "user" key to a new session keyring of the test's
// thread (locked to it until the test ends: devbox started from the test
// inherits that keyring) and to the user keyring, and returns its
// description.
func canaryKeys(t *testing.T) string {
	t.Helper()
	var r [8]byte
	rand.Read(r[:])
	desc := "devbox-canary-key-" + hex.EncodeToString(r[:])
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	if _, _, errno := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); errno != 0 {
		t.Fatalf("joining a session keyring: %v", errno)
	}
	for _, ring := range []int{unix.KEY_SPEC_SESSION_KEYRING, unix.KEY_SPEC_USER_KEYRING} {
		id, err := unix.AddKey("user", desc, []byte("secret"), ring)
		if err != nil {
			t.Fatalf("adding the canary key: %v", err)
		}
		t.Cleanup(func() { unix.KeyctlInt(unix.KEYCTL_UNLINK, id, ring, 0, 0) })
	}
	// Control: the key is there for a process of the caller's.
	if _, err := unix.KeyctlSearch(unix.KEY_SPEC_SESSION_KEYRING, "user", desc, 0); err != nil {
		t.Fatalf("control: the canary key is not in the session keyring: %v", err)
	}
	return desc
}

// sandboxHome returns a new directory for a box's own home (--home).
func sandboxHome(t *testing.T) string {
	t.Helper()
	h := filepath.Join(t.TempDir(), "sbhome")
	if err := os.Mkdir(h, 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEscapeStatusLikePodman compares the confinement of a box's root with
// rootless podman's on the same image: capabilities no wider, seccomp on,
// no_new_privs at least as strict.
func TestEscapeStatusLikePodman(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	ours := lines(e.ok("run", "--net", "none", img, "--", "/probe", "status").stdout)
	if ours["CapInh"] != "0000000000000000" || ours["CapAmb"] != "0000000000000000" {
		t.Errorf("inheritable/ambient capabilities in the box: %v", ours)
	}
	if ours["CapBnd"] != "00000000800405fb" || ours["CapEff"] != ours["CapBnd"] {
		t.Errorf("root's capabilities in the box: %v (want podman's default set 00000000800405fb)", ours)
	}
	if ours["NoNewPrivs"] != "1" {
		t.Errorf("no_new_privs: %v", ours)
	}
	if ours["Seccomp"] != "2" {
		t.Errorf("seccomp: %v (want 2, a filter)", ours)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		testutil.Skip(t, "podman is not installed (CI installs it): the comparison needs it")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"), 0o644)
	storage := filepath.Join(dir, "storage.conf")
	os.WriteFile(storage, []byte(fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "graph"), filepath.Join(dir, "run"))), 0o644)
	penv := append(os.Environ(), "CONTAINERS_CONF="+conf, "CONTAINERS_STORAGE_CONF="+storage)
	// crun refuses a hybrid cgroup hierarchy (this test machine's); runc
	// (provision.sh installs it) does not, and the runtime does not change
	// what is compared: podman's defaults.
	args := []string{"run", "--rm", "--tls-verify=false", "--network", "none", img, "/probe", "status"}
	if _, err := exec.LookPath("runc"); err == nil {
		args = append([]string{"--runtime", "runc"}, args...)
	}
	pc := exec.Command("podman", args...)
	pc.Env = penv
	out, err := pc.CombinedOutput()
	defer func() {
		// Its storage belongs to subordinate ids.
		c := exec.Command("podman", "unshare", "rm", "-rf", filepath.Join(dir, "graph"), filepath.Join(dir, "run"))
		c.Env = penv
		c.Run()
	}()
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	theirs := lines(string(out))
	t.Logf("devbox: %v\npodman: %v", ours, theirs)
	mask := func(m map[string]string, k string) uint64 {
		v, err := strconv.ParseUint(m[k], 16, 64)
		if err != nil {
			t.Fatalf("%s: %q", k, m[k])
		}
		return v
	}
	if b, p := mask(ours, "CapBnd"), mask(theirs, "CapBnd"); b&^p != 0 {
		t.Errorf("devbox's bounding set %x has capabilities podman's %x lacks", b, p)
	}
	if b, p := mask(ours, "CapEff"), mask(theirs, "CapEff"); b&^p != 0 {
		t.Errorf("devbox's effective set %x has capabilities podman's %x lacks", b, p)
	}
	if theirs["Seccomp"] != ours["Seccomp"] {
		t.Errorf("seccomp mode: devbox %s, podman %s", ours["Seccomp"], theirs["Seccomp"])
	}
	if ours["NoNewPrivs"] < theirs["NoNewPrivs"] {
		t.Errorf("no_new_privs: devbox %s, podman %s", ours["NoNewPrivs"], theirs["NoNewPrivs"])
	}
}

// TestEscapeScratchOOM: a box whose writes are in memory is the OOM
// killer's first choice, not devbox or the desktop.
func TestEscapeScratchOOM(t *testing.T) {
	e := newEnv(t)
	e.ok("pull", "-q", "busybox")
	r := e.ok("run", "--net", "none", "busybox", "--", "sh", "-c", "cat /proc/1/oom_score_adj /proc/self/oom_score_adj")
	if strings.Fields(r.stdout)[0] != "500" || strings.Fields(r.stdout)[1] != "500" {
		t.Errorf("oom_score_adj of the init and the command: %q, want 500 500", r.stdout)
	}
	self, _ := os.ReadFile("/proc/self/oom_score_adj")
	if strings.TrimSpace(string(self)) == "500" {
		t.Fatal("the test itself already has oom_score_adj 500: nothing to tell apart")
	}
}

// TestNestedUserNamespaces: a dev box runs the user's own tools, whose
// sandboxes (Chromium, Electron, bwrap, a nested podman) build user
// namespaces: its filter lets them, while its bounding set stays the
// default. A sandboxed box (devbox run, a box with a home of its own) keeps
// Docker's strict filter: no user namespace.
func TestNestedUserNamespaces(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	const try = "unshare -Ur sh -c 'id -u; cat /proc/self/uid_map' && grep CapBnd /proc/self/status"
	r := e.run("shell", "debian", "--", "sh", "-c", try)
	if r.code != 0 || !strings.Contains(r.stdout, "CapBnd:\t00000000800405fb") {
		t.Errorf("dev box: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	other := filepath.Join(t.TempDir(), "other-home")
	os.MkdirAll(other, 0o755)
	e.ok("create", "sandboxed", "--image", "debian", "--home", other)
	for _, args := range [][]string{
		{"shell", "sandboxed", "--", "sh", "-c", try},
		{"run", "--net", "none", "debian", "--", "sh", "-c", try},
	} {
		r := e.run(args...)
		if r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("devbox %s: exit %d, want unshare refused\n%s\n%s", args[0], r.code, r.stdout, r.stderr)
		}
	}
	if r := e.ok("inspect", "debian"); !strings.Contains(r.stdout, "with user namespaces") {
		t.Errorf("inspect does not say the dev box allows user namespaces:\n%s", r.stdout)
	}
}

// TestEscapeDevBoxOwnRoot: a dev box binds the user's home with what is
// mounted below it. With the store under the home (the default), that
// was the box's own root file system a second time, with its /proc and
// /sys unmasked, and, being a fully visible proc, it let a nested user
// namespace mount a fresh proc. The box must see its root only at /.
func TestEscapeDevBoxOwnRoot(t *testing.T) {
	e := newEnv(t)
	e.data = filepath.Join(e.home, ".local", "share") // the default layout: the store in the home
	e.root = filepath.Join(e.data, "devbox")
	e.stopBoxesAtCleanup()
	r := e.run("shell", "debian", "--", "sh", "-c",
		"grep -c '/containers/.*/merged' /proc/self/mountinfo; "+
			"cat \"$HOME\"/.local/share/devbox/containers/*/merged/proc/keys 2>/dev/null | wc -c; "+
			"unshare -Urmpf --mount-proc true 2>/dev/null; echo nested-proc=$?")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	f := strings.Fields(r.stdout)
	if len(f) != 3 || f[0] != "0" || f[1] != "0" || f[2] == "nested-proc=0" {
		t.Errorf("the dev box sees its own root again under the home (mounts, bytes of /proc/keys, nested proc mount): %q", r.stdout)
	}
	// A box with a home of its own keeps no_new_privs.
	other := filepath.Join(t.TempDir(), "h")
	os.MkdirAll(other, 0o755)
	e.ok("create", "sb", "--image", "debian", "--home", other)
	if r := e.ok("shell", "sb", "--", "grep", "NoNewPrivs", "/proc/self/status"); !strings.Contains(r.stdout, "1") {
		t.Errorf("a box with a home of its own: %q, want no_new_privs", r.stdout)
	}
}
