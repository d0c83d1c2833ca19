//go:build integration

package integration

import (
	"os"
	"testing"
)

// TestEscapeNetTapTakeover: since session 10 a box on the gvisor driver
// (without ports) makes its tap itself: its init creates tap0 persistent,
// attaches devbox's filter, and hands the one descriptor to the network
// helper without waiting for it. Box root with every capability and the
// user's /dev/net/tun (--device) asks for tap0 again — as it is, as a
// multi-queue device, as a tun — to read and write the helper's side of
// its network past the filter: each must be refused (the helper's queue is
// the tap's only one, and the flags cannot change), while a tap of its own
// is allowed (it leads nowhere). A red-team pass; it held.
func TestEscapeNetTapTakeover(t *testing.T) {
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		t.Skipf("/dev/net/tun: %v (the gvisor driver needs it too)", err)
	} else {
		f.Close()
	}
	e := newEnv(t)
	img := probeImage(t, e)
	r := e.ok("run", "--net", "gvisor", "--cap-add", "ALL", "--device", "/dev/net/tun", img, "--", "/probe", "tap")
	m := lines(r.stdout)
	if m["open /dev/net/tun"] != "ok" || m["own tap"] != "ok" {
		t.Fatalf("the probe could not use /dev/net/tun (the test is void):\n%s", r.stdout)
	}
	for _, k := range []string{"attach tap", "attach multi-queue", "attach tun"} {
		if v, ok := m[k]; !ok || v == "ok" {
			t.Errorf("%s: %q (want a refusal)\n%s", k, v, r.stdout)
		}
	}
}
