//go:build integration

package integration

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// abstractCanary listens on a new abstract unix socket of the host's
// network namespace, stream and datagram (as an X server's
// @/tmp/.X11-unix/X0 or a session bus at unix:abstract= do), and counts
// what reaches it.
type abstractCanary struct {
	name string
	got  atomic.Int64
}

func newAbstractCanary(t *testing.T) *abstractCanary {
	t.Helper()
	var r [8]byte
	rand.Read(r[:])
	c := &abstractCanary{name: "devbox-canary-" + hex.EncodeToString(r[:])}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + c.name, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.got.Add(1)
			conn.Close()
		}
	}()
	d, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "@" + c.name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	go func() {
		b := make([]byte, 512)
		for {
			if _, _, err := d.ReadFromUnix(b); err != nil {
				return
			}
			c.got.Add(1)
		}
	}()
	return c
}

// TestEscapeAbstractSockets: a sandbox that shares the host's network
// namespace (`--net host`) must still not reach the host's abstract unix
// sockets, where X servers listen (@/tmp/.X11-unix/X0: with
// `xhost +si:localuser:$USER`, the default of GNOME and others, a client
// of the user's uid needs no cookie and can type into any window) and
// where some session buses do. The probe connects to a canary of the
// test's; a dev box with --net host reaches it (the control: it shares
// the host on purpose), and sandboxes keep their own abstract sockets
// working among their own processes.
func TestEscapeAbstractSockets(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	e.stopBoxesAtCleanup()
	e.ok("create", "sb", "--image", img, "--home", sandboxHome(t), "--net", "host")
	e.ok("create", "dev", "--image", img, "--net", "host", "--no-provision")
	for _, tc := range []struct {
		name  string
		args  []string
		reach bool
	}{
		{name: "run --net host", args: []string{"run", "--net", "host", img, "--"}},
		{name: "run --net none", args: []string{"run", "--net", "none", img, "--"}},
		{name: "home box --net host", args: []string{"exec", "sb", "--"}},
		{name: "dev box --net host (control)", args: []string{"exec", "dev", "--"}, reach: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newAbstractCanary(t)
			r := e.ok(append(tc.args, "/probe", "abstract", c.name)...)
			t.Logf("probe:\n%s", r.stdout)
			time.Sleep(100 * time.Millisecond)
			if n := c.got.Load(); tc.reach && n != 2 {
				t.Errorf("the dev box reached the host's abstract socket %d times, want 2 (the probe does not work):\n%s", n, r.stdout)
			} else if !tc.reach && n != 0 {
				t.Errorf("the sandbox reached the host's abstract socket @%s (%d times):\n%s", c.name, n, r.stdout)
			}
		})
	}
	// Inside a sandbox, abstract sockets of its own still work.
	r := e.ok("run", "--net", "host", img, "--", "sh", "-c",
		"/probe abstract-listen devbox-own-$$ & sleep 0.3; /probe abstract devbox-own-$$; wait")
	if !strings.Contains(r.stdout, "listen-got: from a box") {
		t.Errorf("an abstract socket of the box's own does not work in a sandbox on --net host: %q %q", r.stdout, r.stderr)
	}
}
