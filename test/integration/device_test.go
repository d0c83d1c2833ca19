//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/runtime/device"
	"github.com/devbox-dev/devbox/test/testutil"
	"golang.org/x/sys/unix"
)

// testDevice is /dev/kvm when the user can open it (test/provision.sh
// makes it 0666, as a desktop's udev does), else /dev/net/tun.
func testDevice(t *testing.T) string {
	for _, d := range []string{"/dev/kvm", "/dev/net/tun"} {
		if unix.Access(d, unix.R_OK|unix.W_OK) == nil {
			return d
		}
	}
	t.Fatal("neither /dev/kvm nor /dev/net/tun can be opened (run test/provision.sh as root)")
	return ""
}

// --device binds a host device that is usable inside (KVM answers its API
// version), in devbox run and in a box, whose inspect lists it; a box
// without it has no such node; hostile and unusable paths are refused.
func TestDevice(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	dev := testDevice(t)
	img := probeImage(t, e)
	want := "open: ok\n"
	if dev == "/dev/kvm" {
		want += "kvm-api: 12\n"
	} else {
		t.Logf("no usable /dev/kvm: testing with %s", dev)
	}
	r := e.run("run", "--net", "none", "--device", dev, img, "--", "/probe", "device", dev)
	if r.code != 0 || r.stdout != want {
		t.Errorf("run --device %s: exit %d\nstdout %q, want %q\nstderr %s", dev, r.code, r.stdout, want, r.stderr)
	}
	if r := e.run("run", "--net", "none", img, "--", "test", "-e", dev); r.code == 0 {
		t.Errorf("a box without --device has %s", dev)
	}

	e.ok("create", "--device", dev, "--net", "none", "--image", img, "devbox-dev")
	r = e.run("shell", "devbox-dev", "--", "/probe", "device", dev)
	if r.code != 0 || r.stdout != want {
		t.Errorf("box with --device %s: exit %d\nstdout %q, want %q\nstderr %s", dev, r.code, r.stdout, want, r.stderr)
	}
	if st := e.provisionState("devbox-dev"); len(st.Devices) != 1 || st.Devices[0] != dev {
		t.Errorf("inspect devices: %q", st.Devices)
	}

	// A link to a device is resolved; to anything else, refused.
	link := filepath.Join(e.home, "mydev")
	os.Symlink(dev, link)
	if r := e.run("run", "--net", "none", "--device", link, img, "--", "/probe", "device", dev); r.code != 0 || r.stdout != want {
		t.Errorf("--device through a link: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	shadow := filepath.Join(e.home, "shadow")
	os.Symlink("/etc/shadow", shadow)
	for arg, why := range map[string]string{
		"/etc/passwd": "not below /dev", shadow: "not below /dev", "/dev": "not below /dev", "/dev/pts": "the box's own /dev",
		"/dev/cpu_dma_latency": "cannot open", "relative": "not an absolute path", "/dev/devbox-none": "no such device",
	} {
		r := e.run("run", "--net", "none", "--device", arg, img, "--", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "--device "+arg) || !strings.Contains(r.stderr, why) {
			t.Errorf("--device %s: exit %d, stderr %q; want a refusal saying %q", arg, r.code, r.stderr, why)
		}
		if r := e.run("create", "--device", arg, "--image", img, "bad"); r.code == 0 {
			t.Errorf("create --device %s: accepted", arg)
		}
	}
}

// The box's DNS answers its own name and host.devbox.internal (busybox's
// nslookup asks the resolver, not /etc/hosts), also in a dev box.
func TestDNSLocalNames(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	r := e.run("run", "--net", "gvisor", "--host-loopback", "--hostname", "dnsbox", "busybox", "--", "sh", "-c",
		"nslookup dnsbox 10.0.2.3; nslookup host.devbox.internal 10.0.2.3")
	if r.code != 0 || !strings.Contains(r.stdout, "10.0.2.100") || !strings.Contains(r.stdout, "10.0.2.2") {
		t.Errorf("run: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// Without host loopback the name is not answered locally.
	r = e.run("run", "--net", "gvisor", "--no-host-loopback", "busybox", "--", "nslookup", "host.devbox.internal", "10.0.2.3")
	if strings.Contains(r.stdout, "10.0.2.2\n") {
		t.Errorf("--no-host-loopback: host.devbox.internal answered: %s", r.stdout)
	}
	// A dev box with the default network (slirp, which picks gvisor here).
	e.ok("create", "--image", "busybox", "dnsdev")
	r = e.run("shell", "dnsdev", "--", "sh", "-c", "nslookup dnsdev 10.0.2.3; nslookup host.devbox.internal 10.0.2.3")
	if r.code != 0 || !strings.Contains(r.stdout, "10.0.2.100") || !strings.Contains(r.stdout, "10.0.2.2") {
		t.Errorf("dev box: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// nvidiaFixture lays out a driver install below a directory of the test
// user's (this machine has no GPU): the version file, libcuda as a real
// ELF library with its soname (gcc), nvidia-smi as a script, a device
// node as a plain file. DEVBOX_NVIDIA_ROOT points devbox at it.
func nvidiaFixture(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatal("gcc is missing (test/provision.sh installs it)")
	}
	write := func(p, body string, mode os.FileMode) {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.54.03  Tue Jun  6 22:20:39 UTC 2023\n", 0o644)
	write("usr/bin/nvidia-smi", "#!/bin/sh\necho 'NVIDIA-SMI 535.54.03 (fixture)'\n", 0o755)
	write("dev/nvidia0", "", 0o666)
	write("usr/share/vulkan/icd.d/nvidia_icd.json", "{}\n", 0o644)
	lib := filepath.Join(dir, "usr/lib/x86_64-linux-gnu/libcuda.so.535.54.03")
	os.MkdirAll(filepath.Dir(lib), 0o755)
	c := exec.Command("gcc", "-shared", "-nostdlib", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", lib, "-x", "c", "-")
	c.Stdin = strings.NewReader("int cuInit(unsigned int flags) { return 0; }\n")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v: %s", err, out)
	}
	os.Symlink("libcuda.so.535.54.03", filepath.Join(dir, "usr/lib/x86_64-linux-gnu/libcuda.so.1"))
}

// With an NVIDIA driver on the host (a fixture tree), a dev box gets its
// programs and libraries read-only and its device nodes, and the box's
// linker cache knows the libraries; doctor reports the driver; a sandboxed
// box gets none of it.
func TestNVIDIAFixture(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		testutil.Skip(t, "the fixture is an x86-64 driver install")
	}
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	fix := filepath.Join(filepath.Dir(e.home), "nvidia-root")
	nvidiaFixture(t, fix)
	env := []string{device.RootEnv + "=" + fix}
	e.ok("create", "--net", "none", "--image", "debian", "gpu")
	r := e.runEnv(env, "shell", "gpu", "--", "sh", "-c",
		"nvidia-smi; ldconfig -p | grep -o 'libcuda.so.1 .*'; test -e /dev/nvidia0 && echo dev; test -e /usr/share/vulkan/icd.d/nvidia_icd.json && echo icd; "+
			"touch /usr/lib/x86_64-linux-gnu/libcuda.so.535.54.03 2>/dev/null || echo read-only")
	want := "NVIDIA-SMI 535.54.03 (fixture)\nlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1\ndev\nicd\nread-only\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("dev box: exit %d\nstdout %q\nwant   %q\nstderr %s", r.code, r.stdout, want, r.stderr)
	}
	// As root too: the bind is read-only, not just root-owned.
	if r := e.runEnv(env, "shell", "--root", "gpu", "--", "sh", "-c", "echo x >> /usr/bin/nvidia-smi 2>/dev/null || echo read-only"); strings.TrimSpace(r.stdout) != "read-only" {
		t.Errorf("root wrote to the driver's program: %q %q", r.stdout, r.stderr)
	}
	r = e.runEnv(env, "doctor", "--json")
	if !strings.Contains(r.stdout, `"check": "gpu"`) || !strings.Contains(r.stdout, "NVIDIA driver 535.54.03: 1 device nodes, 1 libraries, 1 programs (nvidia-smi)") {
		t.Errorf("doctor: %s", r.stdout)
	}
	sand := filepath.Join(filepath.Dir(e.home), "sandhome")
	e.ok("create", "--net", "none", "--home", sand, "--image", "debian", "sandbox")
	r = e.runEnv(env, "shell", "sandbox", "--", "sh", "-c", "test -e /usr/bin/nvidia-smi || test -e /dev/nvidia0 || echo none")
	if strings.TrimSpace(r.stdout) != "none" {
		t.Errorf("sandboxed box: %q %q", r.stdout, r.stderr)
	}
}
