//go:build vm

// Package vm is the cgroup suite of the VM test rig (test/vm/rig.sh). It
// runs inside a QEMU guest booted from an initramfs, on pure cgroup v2, as
// an unprivileged user whose cgroup was delegated the way systemd delegates
// user@.service, and proves that devbox's limits are enforced by the kernel:
// OOM kills, failing forks, CPU throttling, live stats and updates.
//
// The guest has no network: the test image is built here and served by an
// in-process registry on 127.0.0.1.
package vm

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	// envAs ("uid:gid") makes TestMain, started as root by the guest's
	// init, run the tests as that user inside envCgroup.
	envAs     = "VMTEST_AS"
	envCgroup = "VMTEST_CGROUP"
	// envServe (an address) makes the binary only serve an empty registry.
	envServe = "VMTEST_SERVE"

	cgroupRoot = "/sys/fs/cgroup"
	registryAt = "127.0.0.1:5000"
	imageRef   = registryAt + "/test/box:1"
)

var (
	devboxBin   = envOr("DEVBOX_BIN", "/usr/bin/devbox")
	workloadBin = envOr("VMTEST_WORKLOAD", "/workload")
	busyboxBin  = envOr("VMTEST_BUSYBOX", "/bin/busybox")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	if addr := os.Getenv(envServe); addr != "" {
		// The systemd guest's shared registry (suite-systemd.sh): test/mkimages
		// pushes into it, the integration subset and the benchmark pull.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, http.Serve(ln, registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
		os.Exit(2)
	}
	if as := os.Getenv(envAs); as != "" && os.Getuid() == 0 {
		os.Exit(switchUser(as, os.Getenv(envCgroup)))
	}
	os.Exit(m.Run())
}

// switchUser re-runs this binary as uid:gid, cloned straight into the
// delegated cgroup dir when there is one, and returns its exit code.
func switchUser(as, dir string) int {
	u, g, _ := strings.Cut(as, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "bad %s=%q\n", envAs, as)
		return 2
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envAs+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
	}
	if dir != "" {
		cg, err := os.Open(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

var (
	setupOnce sync.Once
	setupErr  error
)

// setup serves the test image and pulls it once for all tests.
func setup(t *testing.T) {
	t.Helper()
	setupOnce.Do(func() { setupErr = serveAndPull() })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

func serveAndPull() error {
	ln, err := net.Listen("tcp", registryAt)
	if err != nil {
		return err
	}
	go http.Serve(ln, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	img, err := testImage()
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(imageRef, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return fmt.Errorf("pushing the test image: %w", err)
	}
	home := os.Getenv("HOME")
	conf := filepath.Join(home, ".config", "devbox")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return err
	}
	// The guest has no /dev/net/tun: these boxes need no network of their
	// own (docs/network.md), so none instead of the user-mode default.
	cfg := "[registries]\ninsecure = [\"" + registryAt + "\"]\n[network]\nmode = \"none\"\n"
	if err := os.WriteFile(filepath.Join(conf, "config.toml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	r := devbox(nil, "pull", imageRef)
	if r.code != 0 {
		return fmt.Errorf("devbox pull: exit %d: %s", r.code, r.stderr)
	}
	return nil
}

// testImage is busybox plus the workload program, one layer.
func testImage() (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = time.Unix(1700000000, 0)
		h.Size = int64(len(body))
		_ = tw.WriteHeader(h)
		_, _ = tw.Write(body)
	}
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys", "root", "tmp"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		add(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: mode}, nil)
	}
	for _, f := range []struct{ src, dst string }{{busyboxBin, "bin/busybox"}, {workloadBin, "workload"}} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return nil, err
		}
		add(&tar.Header{Name: f.dst, Typeflag: tar.TypeReg, Mode: 0o755}, b)
	}
	for _, l := range []string{"sh", "sleep", "cat", "true", "echo"} {
		add(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	add(&tar.Header{Name: "etc/group", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:\n"))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/sh"}
	cf.Config.Env = []string{"PATH=/bin"}
	return mutate.ConfigFile(img, cf)
}

type result struct {
	stdout, stderr string
	code           int
}

func devboxCmd(args ...string) *exec.Cmd {
	c := exec.Command(devboxBin, args...)
	c.Env = []string{"HOME=" + os.Getenv("HOME"), "USER=" + os.Getenv("USER"), "PATH=/usr/bin:/bin"}
	for _, k := range []string{"XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"} {
		if v := os.Getenv(k); v != "" {
			c.Env = append(c.Env, k+"="+v)
		}
	}
	return c
}

func devbox(stdin io.Reader, args ...string) result {
	return runCmd(devboxCmd(args...), stdin)
}

// runCmd runs c with stdin and returns its output and exit code.
func runCmd(c *exec.Cmd, stdin io.Reader) result {
	c.Stdin = stdin
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return result{out.String(), errb.String(), code}
}

// statsRow is the part of `devbox stats --json` the tests read.
type statsRow struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Cgroup     string  `json:"cgroup"`
	CPUPercent float64 `json:"cpuPercent"`
	cgroup.Stats
}

// statsOf returns box name's row of `devbox stats --no-stream --json`,
// waiting for the box to appear.
func statsOf(t *testing.T, box string) statsRow {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := devbox(nil, "stats", "--no-stream", "--json", box)
		if r.code == 0 {
			var rows []statsRow
			if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 1 {
				t.Fatalf("stats --json: %v: %q", err, r.stdout)
			}
			return rows[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("box %s never showed up in devbox stats: %s", box, r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readFile(t *testing.T, cg, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cgroupRoot, cg, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func keyed(t *testing.T, cg, file, key string) uint64 {
	t.Helper()
	for _, l := range strings.Split(readFile(t, cg, file), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	t.Fatalf("%s has no %s", file, key)
	return 0
}

func selfCgroup(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.TrimPrefix(string(b), "0::"))
}

func gone(cg string) bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, cg))
	return os.IsNotExist(err)
}

// TestPlacementWithoutLimits: with no limit the box still gets its own
// cgroup below the delegated one, its processes start in it, and it is
// removed when the box stops; devbox moved itself (and us) to the leaf.
func TestPlacementWithoutLimits(t *testing.T) {
	setup(t)
	base := cgroup.SubtreeBase(os.Getenv(envCgroup)[len(cgroupRoot):])
	r := devbox(nil, "run", imageRef, "--", "/workload", "cgroup")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	cg := strings.TrimSpace(r.stdout)
	if filepath.Dir(cg) != base || !strings.HasPrefix(filepath.Base(cg), "devbox-") || filepath.Base(cg) == cgroup.LeafName {
		t.Errorf("the box ran in %q, want %s/devbox-<id>", cg, base)
	}
	if !gone(cg) {
		t.Errorf("cgroup %s is left after the box stopped", cg)
	}
	if got := selfCgroup(t); got != base+"/"+cgroup.LeafName {
		t.Errorf("the caller is in %s, want the leaf %s/%s", got, base, cgroup.LeafName)
	}
	if got := readFile(t, base, "cgroup.subtree_control"); !strings.Contains(got, "memory") || !strings.Contains(got, "pids") || !strings.Contains(got, "cpu") {
		t.Errorf("controllers enabled for the boxes: %q", got)
	}
	if r.stderr != "" {
		t.Errorf("unexpected messages: %s", r.stderr)
	}
}

// TestMemoryLimitOOM: a process allocating beyond --memory is killed by
// the kernel; devbox says so and exits 137.
func TestMemoryLimitOOM(t *testing.T) {
	setup(t)
	r := devbox(nil, "run", "--memory", "64m", "--memory-swap", "64m", imageRef, "--", "/workload", "alloc", "256")
	if r.code != 137 {
		t.Fatalf("exit %d, want 137\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "devbox: the box hit its memory limit (--memory 64MiB)") {
		t.Errorf("no OOM message: %q", r.stderr)
	}
	if strings.Contains(r.stdout, "not killed") {
		t.Errorf("the allocation finished: %s", r.stdout)
	}
	t.Logf("workload said: %s", lastLine(r.stdout))
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// TestMemoryWithinLimit: the same allocation under a larger limit works.
func TestMemoryWithinLimit(t *testing.T) {
	setup(t)
	r := devbox(nil, "run", "--memory", "256m", imageRef, "--", "/workload", "alloc", "48")
	if r.code != 0 || !strings.Contains(r.stdout, "allocated 48 MiB, not killed") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// TestPidsLimit: with --pids-limit 20 the box holds exactly 20 tasks when
// the next fork fails.
func TestPidsLimit(t *testing.T) {
	setup(t)
	pidsLimited(t, devboxCmd("run", "--name", "pids", "--pids-limit", "20", imageRef, "--", "/workload", "fork", "/bin/busybox"), "pids")
}

// pidsLimited runs c, a devbox run of box "--pids-limit 20 … /workload
// fork", checks that the box holds exactly 20 tasks when the next fork
// fails and that its cgroup is gone afterwards, and returns its stats row.
func pidsLimited(t *testing.T, c *exec.Cmd, box string) statsRow {
	t.Helper()
	stdin, _ := c.StdinPipe()
	stdout, _ := c.StdoutPipe()
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stdin.Close()
		c.Wait()
		t.Fatalf("no report from the workload: %v; stderr: %s", err, errb.String())
	}
	t.Logf("workload: %s", strings.TrimSpace(line))
	if !strings.Contains(line, "resource temporarily unavailable") {
		t.Errorf("fork failed for another reason: %s", line)
	}
	row := statsOf(t, box)
	cur := readFile(t, row.Cgroup, "pids.current")
	if cur != "20" || row.Pids.Current != 20 || row.Pids.Limit == nil || *row.Pids.Limit != 20 {
		t.Errorf("at the failed fork: pids.current %s, stats %+v; want 20 of 20", cur, row.Pids)
	}
	if n := keyed(t, row.Cgroup, "pids.events", "max"); n == 0 {
		t.Errorf("pids.events max = 0: the fork did not fail on the limit")
	}
	stdin.Close()
	if err := c.Wait(); err != nil {
		t.Errorf("box: %v; stderr: %s", err, errb.String())
	}
	if !gone(row.Cgroup) {
		t.Errorf("cgroup %s is left", row.Cgroup)
	}
	return row
}

// TestCPULimit: --cpus 0.5 holds a busy loop near half a CPU, and devbox
// stats reports the same numbers as the cgroup files.
func TestCPULimit(t *testing.T) {
	setup(t)
	c := devboxCmd("run", "--name", "cpu", "--cpus", "0.5", imageRef, "--", "/workload", "spin", "120")
	stdin, _ := c.StdinPipe()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	row := statsOf(t, "cpu")
	cg := row.Cgroup
	if got := readFile(t, cg, "cpu.max"); got != "50000 100000" {
		t.Errorf("cpu.max = %q", got)
	}
	// Wait until the workload spins (the box starts slowly under TCG):
	// the cgroup must have used 100 ms of CPU within half a second.
	for deadline := time.Now().Add(30 * time.Second); ; {
		u := keyed(t, cg, "cpu.stat", "usage_usec")
		time.Sleep(500 * time.Millisecond)
		if keyed(t, cg, "cpu.stat", "usage_usec")-u > 100000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workload never started spinning; stdout %q stderr %q", out.String(), errb.String())
		}
	}
	u1, t1 := keyed(t, cg, "cpu.stat", "usage_usec"), time.Now()
	time.Sleep(2 * time.Second)
	u2, t2 := keyed(t, cg, "cpu.stat", "usage_usec"), time.Now()
	share := float64(u2-u1) / float64(t2.Sub(t1).Microseconds())
	t.Logf("busy loop under --cpus 0.5: %.1f%% of one CPU over %s", share*100, t2.Sub(t1).Round(time.Millisecond))
	if share < 0.35 || share > 0.65 {
		t.Errorf("CPU share %.2f, want 0.35-0.65", share)
	}

	// devbox stats: the limits and the counters are the files'.
	before := keyed(t, cg, "cpu.stat", "usage_usec")
	row = statsOf(t, "cpu")
	after := keyed(t, cg, "cpu.stat", "usage_usec")
	if row.CPU.UsageUsec < before || row.CPU.UsageUsec > after {
		t.Errorf("stats usage_usec %d not between the file's %d and %d", row.CPU.UsageUsec, before, after)
	}
	if row.CPU.Limit == nil || *row.CPU.Limit != 0.5 {
		t.Errorf("stats cpu limit %v, want 0.5", row.CPU.Limit)
	}
	if row.CPUPercent < 25 || row.CPUPercent > 75 {
		t.Errorf("stats cpuPercent %.1f, want about 50", row.CPUPercent)
	}
	if row.Memory.Limit != nil || readFile(t, cg, "memory.max") != "max" {
		t.Errorf("memory limit %v with memory.max %s", row.Memory.Limit, readFile(t, cg, "memory.max"))
	}
	if n := keyed(t, cg, "cpu.stat", "nr_throttled"); n == 0 {
		t.Errorf("cpu.stat nr_throttled = 0: the loop was never throttled")
	}
	stdin.Close()
	if err := c.Wait(); err != nil {
		t.Errorf("box: %v; stderr: %s", err, errb.String())
	}
	if !gone(cg) {
		t.Errorf("cgroup %s is left", cg)
	}
}

// TestStatsJSON: for a quiet box every number of `devbox stats --json`
// is what the cgroup files say.
func TestStatsJSON(t *testing.T) {
	setup(t)
	c := devboxCmd("run", "--name", "quiet", "--memory", "96m", "--pids-limit", "30", imageRef, "--", "sleep", "600")
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}()
	row := statsOf(t, "quiet")
	time.Sleep(500 * time.Millisecond) // the box settles
	row = statsOf(t, "quiet")
	cg := row.Cgroup
	if row.Name != "quiet" || len(row.ID) < 12 || !strings.HasSuffix(cg, "/devbox-"+row.ID) {
		t.Errorf("row names %q %q %q", row.Name, row.ID, cg)
	}
	if got := readFile(t, cg, "memory.max"); row.Memory.Limit == nil || strconv.FormatUint(*row.Memory.Limit, 10) != got || got != "100663296" {
		t.Errorf("memory limit %v, memory.max %s", row.Memory.Limit, got)
	}
	if got := readFile(t, cg, "pids.max"); row.Pids.Limit == nil || *row.Pids.Limit != 30 || got != "30" {
		t.Errorf("pids limit %v, pids.max %s", row.Pids.Limit, got)
	}
	if got := readFile(t, cg, "pids.current"); strconv.FormatUint(row.Pids.Current, 10) != got {
		t.Errorf("pids current %d, pids.current %s", row.Pids.Current, got)
	}
	cur, _ := strconv.ParseUint(readFile(t, cg, "memory.current"), 10, 64)
	if d := int64(cur) - int64(row.Memory.Current); row.Memory.Current == 0 || d > 1<<20 || d < -(1<<20) {
		t.Errorf("memory current %d, memory.current %d", row.Memory.Current, cur)
	}
	if row.CPUPercent > 10 {
		t.Errorf("a sleeping box uses %.1f%% CPU", row.CPUPercent)
	}
	// The table form names the box too.
	if r := devbox(nil, "stats", "--no-stream"); r.code != 0 || !strings.Contains(r.stdout, "quiet") || !strings.Contains(r.stdout, "96MiB") {
		t.Errorf("stats table (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestUpdate: devbox update changes a running box's limits.
func TestUpdate(t *testing.T) {
	setup(t)
	c := devboxCmd("run", "--name", "upd", "--memory", "64m", imageRef, "--", "sleep", "600")
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}()
	cg := statsOf(t, "upd").Cgroup
	if got := readFile(t, cg, "memory.max"); got != "67108864" {
		t.Errorf("memory.max before: %s", got)
	}
	r := devbox(nil, "update", "upd", "--memory", "128m", "--pids-limit", "50", "--cpus", "1.5", "--cpu-weight", "50", "--io-weight", "200")
	if r.code != 0 {
		t.Fatalf("update: exit %d: %s", r.code, r.stderr)
	}
	for file, want := range map[string]string{
		"memory.max": "134217728", "pids.max": "50", "cpu.max": "150000 100000", "cpu.weight": "50",
	} {
		if got := readFile(t, cg, file); got != want {
			t.Errorf("%s = %q after update, want %q", file, got, want)
		}
	}
	if got := readFile(t, cg, "io.weight"); !strings.Contains(got, "default 200") {
		t.Errorf("io.weight = %q", got)
	}
	if r := devbox(nil, "update", "nosuchbox", "--memory", "1g"); r.code != 125 || !strings.Contains(r.stderr, "no such box") {
		t.Errorf("update of a missing box: exit %d: %s", r.code, r.stderr)
	}
	c.Process.Signal(syscall.SIGTERM)
	c.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !gone(cg) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !gone(cg) {
		t.Errorf("cgroup %s is left after the box was stopped", cg)
	}
}

// TestMalformedLimit: a bad value fails before anything runs.
func TestMalformedLimit(t *testing.T) {
	setup(t)
	r := devbox(nil, "run", "--memory", "1.5.5g", imageRef, "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "(hint: ") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("exit %d: %q", r.code, r.stderr)
	}
}
