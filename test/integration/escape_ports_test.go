//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// forwardJSON is one entry of devbox ports --json, with the reason a port
// is not forwarded.
type forwardJSON struct {
	HostIP       string `json:"hostIP"`
	HostPort     int    `json:"hostPort"`
	BoxPort      int    `json:"boxPort"`
	Auto         bool   `json:"auto"`
	NotForwarded string `json:"notForwarded"`
}

// TestEscapePortsSquatted: another program (another user's, played by the
// test) holds the host port a box server would be forwarded to. The
// forward is not moved elsewhere: devbox ports shows the port as not
// forwarded, with why, the box's network log says so once, and the
// squatter gets no connection from devbox. Once it leaves, the port is
// forwarded to the box.
func TestEscapePortsSquatted(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	squat, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := squat.Addr().(*net.TCPAddr).Port
	var got atomic.Int32
	go func() {
		for {
			c, err := squat.Accept()
			if err != nil {
				return
			}
			got.Add(1)
			c.Close()
		}
	}()
	e.ok("create", "web", "--image", "busybox", "--net", "gvisor", "--grace", "60")
	e.ok("exec", "web", "--", "sh", "-c", fmt.Sprintf("mkdir -p /tmp/www && echo box > /tmp/www/index.html && httpd -p 127.0.0.1:%d -h /tmp/www", p))

	ports := func() []forwardJSON {
		var ps []forwardJSON
		r := e.run("ports", "web", "--json")
		_ = json.Unmarshal([]byte(r.stdout), &ps)
		return ps
	}
	var entry forwardJSON
	for deadline := time.Now().Add(10 * time.Second); entry.BoxPort == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, f := range ports() {
			if f.BoxPort == p {
				entry = f
			}
		}
	}
	if entry.BoxPort == 0 {
		t.Fatalf("box port %d never listed: %+v", p, ports())
	}
	if entry.NotForwarded == "" || !strings.Contains(entry.NotForwarded, "taken by another program") || entry.HostPort != p {
		t.Errorf("box port %d: %+v; want not forwarded, host port %d taken", p, entry, p)
	}
	if r := e.ok("ports", "web"); !strings.Contains(r.stdout, "not forwarded") {
		t.Errorf("devbox ports web:\n%s\nwant the port shown as not forwarded", r.stdout)
	}
	ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
	if len(ents) == 1 {
		log, _ := os.ReadFile(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "devbox", ents[0].Name()[:16], "net.log"))
		if n := strings.Count(string(log), fmt.Sprintf("box port %d/tcp is not forwarded", p)); n != 1 {
			t.Errorf("net.log says it %d times, want once:\n%s", n, log)
		}
	}
	time.Sleep(1200 * time.Millisecond) // two more polls: still not moved, nothing sent to the squatter
	for _, f := range ports() {
		if f.BoxPort == p && (f.NotForwarded == "" || f.HostPort != p) {
			t.Errorf("the forward moved: %+v", f)
		}
	}
	if n := got.Load(); n != 0 {
		t.Errorf("the squatter received %d connections from devbox", n)
	}
	// The squatter leaves: the port is the box's now.
	squat.Close()
	if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", p), 5*time.Second); err != nil || body != "box\n" {
		t.Errorf("after the squatter left: %q %v", body, err)
	}
}

// TestEscapePortsSandboxNotForwarded: a sandbox (a box with a home of its
// own) that listens on a port must not get a listener on the host's
// 127.0.0.1 unless the user published it (-p): automatic forwarding would
// put it on the host's loopback, where the user's own clients (a
// database client, a browser sending localhost cookies, which ignore the
// port) would talk to it as to a host service once that port is free. A
// dev box's port is forwarded (the control), as is a sandbox's with -p.
func TestEscapePortsSandboxNotForwarded(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	home := sandboxHome(t)
	published := freePort(t)
	for _, tc := range []struct {
		name    string
		create  []string
		port    int
		forward bool
	}{
		{name: "home box", create: []string{"--home", home}, port: freePort(t)},
		{name: "home box, published", create: []string{"--home", home, "-p", fmt.Sprintf("%d:%d", published, published)}, port: published, forward: true},
		{name: "dev box (control)", create: []string{"--no-provision"}, port: freePort(t), forward: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(strings.Fields(tc.name)[0], ",", "") + fmt.Sprint(tc.port)
			e.ok(append([]string{"create", name, "--image", "busybox", "--net", "gvisor", "--grace", "60"}, tc.create...)...)
			e.ok("exec", name, "--", "sh", "-c", fmt.Sprintf("mkdir -p /tmp/www && echo box > /tmp/www/index.html && httpd -p 0.0.0.0:%d -h /tmp/www", tc.port))
			// Auto forwarding polls every 500 ms: 3 s is six polls.
			body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", tc.port), 3*time.Second)
			reached := err == nil && body == "box\n"
			if reached != tc.forward {
				t.Errorf("host 127.0.0.1:%d reached the box's server: %v (want %v; %q %v)\nports: %s", tc.port, reached, tc.forward, body, err, e.run("ports", name).stdout)
			}
			e.ok("rm", "-f", name)
		})
	}
}
