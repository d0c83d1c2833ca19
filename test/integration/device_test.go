//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	e.ok("create", "--net", "gvisor", "--image", "busybox", "dnsdev")
	r = e.run("shell", "dnsdev", "--", "sh", "-c", "nslookup dnsdev 10.0.2.3; nslookup host.devbox.internal 10.0.2.3")
	if r.code != 0 || !strings.Contains(r.stdout, "10.0.2.100") || !strings.Contains(r.stdout, "10.0.2.2") {
		t.Errorf("dev box: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}
