package pasta

import (
	"slices"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	d := &Parent{o: Options{MTU: 65520, HostLoopback: true, IPv6: false}}
	args := d.Args(42, "/run/x/netns", "/run/x/pasta.pid")
	s := strings.Join(args, " ")
	for _, want := range []string{
		"--foreground", "--pid /run/x/pasta.pid", "--config-net", "--ns-ifname tap0", "--mtu 65520",
		"--address 10.0.2.100", "--gateway 10.0.2.2", "--dns-forward 10.0.2.3",
		// nothing of the host's loopback is bound inside the box
		"--tcp-ns none", "--udp-ns none", "--tcp-ports none", "--udp-ports none",
		"--ipv4-only", "--userns /proc/42/ns/user --netns /run/x/netns",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("args lack %q: %s", want, s)
		}
	}
	if slices.Contains(args, "--no-map-gw") {
		t.Errorf("host loopback on, but --no-map-gw: %s", s)
	}
	d = &Parent{o: Options{MTU: 1500, HostLoopback: false, IPv6: true}}
	s = strings.Join(d.Args(42, "", "/p"), " ")
	for _, want := range []string{"--no-map-gw", "--address fd00::100", "--gateway fd00::2", "--mtu 1500"} {
		if !strings.Contains(s, want) {
			t.Errorf("args lack %q: %s", want, s)
		}
	}
	if strings.Contains(s, "--ipv4-only") || !strings.HasSuffix(s, " 42") {
		t.Errorf("IPv6 by pid: %s", s)
	}
}
