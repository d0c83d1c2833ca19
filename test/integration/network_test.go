//go:build integration

package integration

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/test/testutil"
)

// The user-mode network tests send traffic only to the host's loopback
// (servers the tests start on 127.0.0.1) and to the boxes they create.

// drivers are the user-mode drivers; each must be installed where the
// tests run (test/provision.sh installs passt and slirp4netns).
var drivers = []string{"gvisor", "pasta", "slirp4netns"}

func requireDriver(t *testing.T, d string) {
	t.Helper()
	need := map[string][]string{"pasta": {"pasta"}, "slirp4netns": {"slirp4netns"}}[d]
	for _, p := range need {
		if _, err := exec.LookPath(p); err != nil {
			testutil.Skip(t, p+" is not installed (test/provision.sh installs it)")
		}
	}
}

// tcpServer serves greeting to every connection on the host's loopback.
func tcpServer(t *testing.T, greeting string) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, greeting)
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// udpEcho answers every datagram with "udp:" and the datagram.
func udpEcho(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("udp:"), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// dnsServer is a tiny authoritative DNS responder on the host's loopback:
// A records for names, NXDOMAIN for other names, no data for other types.
func dnsServer(t *testing.T, names map[string]net.IP) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], names); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func dnsAnswer(q []byte, names map[string]net.IP) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	question := q[12 : i+5]
	name := strings.ToLower(strings.Join(labels, "."))
	ip, known := names[name]
	resp := append([]byte(nil), q[:2]...)
	flags := uint16(0x8180) // response, recursion desired and available
	if !known {
		flags |= 3 // NXDOMAIN
	}
	answer := known && qtype == 1
	an := 0
	if answer {
		an = 1
	}
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1)
	resp = binary.BigEndian.AppendUint16(resp, uint16(an))
	resp = append(resp, 0, 0, 0, 0)
	resp = append(resp, question...)
	if answer {
		resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		resp = append(resp, ip.To4()...)
	}
	return resp
}

// setConfig appends lines to the env's configuration file.
func (e *env) setConfig(lines string) {
	e.t.Helper()
	p := filepath.Join(e.config, "devbox", "config.toml")
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		e.t.Fatal(err)
	}
}

func TestNetGatewayTCPAndUDP(t *testing.T) {
	e := newEnv(t)
	tport := tcpServer(t, "hello-from-host")
	uport := udpEcho(t)
	script := fmt.Sprintf(`exec 3<>/dev/tcp/host.devbox.internal/%d && read -r l <&3 && echo "tcp:$l"
exec 4<>/dev/udp/host.devbox.internal/%d && echo ping >&4 && timeout 5 dd bs=512 count=1 status=none <&4
cat /sys/class/net/tap0/mtu; grep -c host.devbox.internal /etc/hosts; grep -c "10.0.2.100.*netbox" /etc/hosts`, tport, uport)
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) {
			requireDriver(t, d)
			r := e.run("run", "--net", d, "--host-loopback", "--hostname", "netbox", "debian", "--", "bash", "-c", script)
			want := "tcp:hello-from-host\nudp:ping\n65520\n1\n1\n"
			if r.code != 0 || r.stdout != want {
				t.Errorf("exit %d\nstdout %q\nwant   %q\nstderr %s", r.code, r.stdout, want, r.stderr)
			}
		})
	}
	t.Run("no-host-loopback", func(t *testing.T) {
		r := e.run("run", "--net", "slirp", "--no-host-loopback", "debian", "--", "bash", "-c",
			fmt.Sprintf("grep -c host.devbox.internal /etc/hosts; timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/%d' && echo reached", tport))
		if strings.Contains(r.stdout, "reached") || !strings.HasPrefix(r.stdout, "0\n") {
			t.Errorf("with --no-host-loopback the box reached the host's loopback: %q %q", r.stdout, r.stderr)
		}
	})
}

func TestNetDNSUpstream(t *testing.T) {
	e := newEnv(t)
	port := dnsServer(t, map[string]net.IP{"devbox-test.example": net.ParseIP("192.0.2.77")})
	e.setConfig(fmt.Sprintf("[network]\ndns = [\"127.0.0.1:%d\"]\n", port))
	r := e.ok("run", "--net", "slirp", "busybox", "--", "nslookup", "devbox-test.example")
	if !strings.Contains(r.stdout, "192.0.2.77") {
		t.Errorf("nslookup through the user-mode DNS: %q %q", r.stdout, r.stderr)
	}
	r = e.run("run", "--net", "slirp", "debian", "--", "getent", "hosts", "devbox-test.example", "nosuchname.example")
	if !strings.Contains(r.stdout, "192.0.2.77") || strings.Contains(r.stdout, "nosuchname") {
		t.Errorf("glibc through the user-mode DNS: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = e.ok("run", "--net", "slirp", "busybox", "--", "cat", "/etc/resolv.conf")
	if !strings.Contains(r.stdout, "nameserver 10.0.2.3") {
		t.Errorf("resolv.conf: %q", r.stdout)
	}
	// A driver that cannot use the configured servers says so.
	if r := e.run("run", "--net", "pasta", "busybox", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "[network] dns") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("--net pasta with [network] dns: %d %q", r.code, r.stderr)
	}
}

// A devbox run without ports starts its command without waiting for the
// network helper (an early start, docs/network.md): what the command sends
// first waits in the tap until the helper's stack reads it, and is
// answered then — not lost, which would cost a TCP retransmission (1 s)
// or a resolver's retry (5 s).
func TestNetFirstPacketsBeforeTheHelper(t *testing.T) {
	e := newEnv(t)
	tport := tcpServer(t, "first")
	dport := dnsServer(t, map[string]net.IP{"first.example": net.ParseIP("192.0.2.9")})
	e.setConfig(fmt.Sprintf("[network]\ndns = [\"127.0.0.1:%d\"]\n", dport))
	script := fmt.Sprintf(`s=$EPOCHREALTIME; exec 3<>/dev/tcp/host.devbox.internal/%d && read -r l <&3; e=$EPOCHREALTIME; echo "$l $s $e"
s=$EPOCHREALTIME; getent hosts first.example; e=$EPOCHREALTIME; echo "dns $s $e"`, tport)
	for i := 0; i < 3; i++ {
		r := e.run("run", "--net", "gvisor", "--host-loopback", "debian", "--", "bash", "-c", script)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "first ") || !strings.Contains(lines[1], "192.0.2.9") || !strings.HasPrefix(lines[2], "dns ") {
			t.Fatalf("exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
		}
		for _, l := range []string{lines[0], lines[2]} {
			f := strings.Fields(l)
			start, err1 := strconv.ParseFloat(f[1], 64)
			end, err2 := strconv.ParseFloat(f[2], 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("bad times in %q", l)
			}
			if d := end - start; d > 0.9 {
				t.Errorf("run %d: %q took %.3f s: the first packets were lost, not queued", i, f[0], d)
			}
		}
	}
}

func TestNetNoneReachesNothing(t *testing.T) {
	e := newEnv(t)
	tport := tcpServer(t, "must-not-arrive")
	r := e.run("run", "--net", "none", "debian", "--", "bash", "-c", fmt.Sprintf(
		"ls /sys/class/net; for a in 127.0.0.1 10.0.2.2; do timeout 5 bash -c \"exec 3<>/dev/tcp/$a/%d\" 2>/dev/null && echo reached $a; done; true", tport))
	if r.code != 0 || r.stdout != "lo\n" {
		t.Errorf("--net none: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// httpGet fetches url from the host, retrying while the forward is set up.
func httpGet(t *testing.T, url string, wait time.Duration) (string, error) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(wait)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), nil
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type portJSON struct {
	Proto    string `json:"proto"`
	HostIP   string `json:"hostIP"`
	HostPort int    `json:"hostPort"`
	BoxPort  int    `json:"boxPort"`
	Auto     bool   `json:"auto"`
}

func (e *env) ports(box string) []portJSON {
	e.t.Helper()
	r := e.ok("ports", box, "--json")
	var ps []portJSON
	if err := json.Unmarshal([]byte(r.stdout), &ps); err != nil {
		e.t.Fatalf("ports --json: %v: %q", err, r.stdout)
	}
	return ps
}

// waitPort waits until box's forwarded ports satisfy ok.
func (e *env) waitPort(box string, ok func([]portJSON) bool) []portJSON {
	e.t.Helper()
	var ps []portJSON
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ps = e.ports(box); ok(ps) {
			return ps
		}
	}
	e.t.Fatalf("ports of %s never became right: %+v", box, ps)
	return nil
}

func TestNetPublishAndAutoForward(t *testing.T) {
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) {
			requireDriver(t, d)
			e := newEnv(t)
			e.stopBoxesAtCleanup()
			hp := freePort(t)
			e.ok("create", "web", "--image", "busybox", "--net", d, "-p", fmt.Sprintf("%d:8000", hp), "--grace", "60")
			// busybox httpd daemonizes: the session ends, the server stays.
			e.ok("exec", "web", "--", "sh", "-c", "mkdir -p /tmp/www && echo published-"+d+" > /tmp/www/index.html && httpd -p 8000 -h /tmp/www")
			if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", hp), 5*time.Second); err != nil || body != "published-"+d+"\n" {
				t.Fatalf("published port %d: %q %v", hp, body, err)
			}
			// A server that starts listening later is forwarded to the
			// host's loopback at the same number, or the next free one.
			ap := freePort(t)
			e.ok("exec", "web", "--", "sh", "-c", fmt.Sprintf("echo auto > /tmp/www/auto.html && { httpd -f -p 127.0.0.1:%d -h /tmp/www </dev/null >/dev/null 2>&1 & echo $! > /tmp/auto.pid; }", ap))
			var got portJSON
			e.waitPort("web", func(ps []portJSON) bool {
				for _, p := range ps {
					if p.Auto && p.BoxPort == ap {
						got = p
						return true
					}
				}
				return false
			})
			if got.HostIP != "127.0.0.1" || got.HostPort < ap || got.HostPort > ap+20 {
				t.Errorf("auto forward: %+v", got)
			}
			if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/auto.html", got.HostPort), 5*time.Second); err != nil || body != "auto\n" {
				t.Errorf("auto-forwarded port: %q %v", body, err)
			}
			// devbox inspect reports the same.
			var insp struct {
				Network struct {
					Driver string     `json:"driver"`
					Ports  []portJSON `json:"ports"`
				} `json:"network"`
			}
			if err := json.Unmarshal([]byte(e.ok("inspect", "web").stdout), &insp); err != nil || insp.Network.Driver != d || len(insp.Network.Ports) < 2 {
				t.Errorf("inspect: %+v %v", insp, err)
			}
			// The forward goes away with the listener.
			e.ok("exec", "web", "--", "sh", "-c", "kill $(cat /tmp/auto.pid)")
			e.waitPort("web", func(ps []portJSON) bool {
				for _, p := range ps {
					if p.Auto && p.BoxPort == ap {
						return false
					}
				}
				return true
			})
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", got.HostPort), time.Second); err == nil {
				c.Close()
				t.Errorf("host port %d still accepts after the box's listener closed", got.HostPort)
			}
		})
	}
}

func TestNetNoAutoPorts(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "quiet", "--image", "busybox", "--net", "slirp", "--no-auto-ports", "--grace", "60")
	ap := freePort(t)
	e.ok("exec", "quiet", "--", "httpd", "-p", strconv.Itoa(ap), "-h", "/")
	time.Sleep(1500 * time.Millisecond) // three poll intervals
	if ps := e.ports("quiet"); len(ps) != 0 {
		t.Errorf("--no-auto-ports forwarded %+v", ps)
	}
}

func TestNetPublishedPortTaken(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	hp := freePort(t)
	spec := fmt.Sprintf("%d:8000", hp)
	e.ok("create", "first", "--image", "busybox", "--net", "slirp", "-p", spec, "--grace", "60")
	e.ok("create", "second", "--image", "busybox", "--net", "slirp", "-p", spec, "--grace", "60")
	e.ok("exec", "first", "--", "true")
	r := e.run("exec", "second", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, strconv.Itoa(hp)) || !strings.Contains(r.stderr, "already in use") ||
		!strings.Contains(r.stderr, "hint:") || strings.Count(r.stderr, "devbox:") != 1 {
		t.Errorf("second box publishing port %d: exit %d, stderr %q", hp, r.code, r.stderr)
	}
	if bs := e.boxes(); len(bs) != 2 || !bs[0].State.Running || bs[1].State.Running {
		t.Errorf("after the failed start: %+v", bs)
	}
	// The first box still serves its port.
	e.ok("exec", "first", "--", "sh", "-c", "mkdir -p /tmp/w && echo first > /tmp/w/index.html && httpd -p 8000 -h /tmp/w")
	if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", hp), 5*time.Second); err != nil || body != "first\n" {
		t.Errorf("first box after the conflict: %q %v", body, err)
	}
	// devbox run fails the same way, before the command runs.
	r = e.run("run", "--net", "slirp", "-p", spec, "busybox", "--", "echo", "ran")
	if r.code != 125 || strings.Contains(r.stdout, "ran") || !strings.Contains(r.stderr, "already in use") || strings.Count(r.stderr, "devbox:") != 1 {
		t.Errorf("devbox run -p %s on a taken port: %d %q %q", spec, r.code, r.stdout, r.stderr)
	}
}

// helpers lists this user's network helpers and the driver processes
// they started (pid → argv).
func helpers(t *testing.T) map[int]string {
	t.Helper()
	out := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		st, err := os.Stat("/proc/" + ent.Name())
		if err != nil || int(st.Sys().(*syscall.Stat_t).Uid) != os.Getuid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil || len(b) == 0 { // a zombie has no command line
			continue
		}
		argv := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		if strings.HasPrefix(argv, "devbox-net") || strings.HasPrefix(argv, "pasta ") || strings.HasPrefix(argv, "slirp4netns ") {
			out[pid] = argv
		}
	}
	return out
}

func TestNetKilledCLILeavesNoHelper(t *testing.T) {
	e := newEnv(t)
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) {
			requireDriver(t, d)
			before := helpers(t)
			hp := freePort(t)
			// --host-loopback: a sandboxed pasta box needs it (docs/network.md).
			c := e.cmd("run", "--net", d, "--host-loopback", "-p", fmt.Sprintf("%d:8000", hp), "busybox", "--", "sh", "-c", "echo started; exec sleep 60")
			out, _ := c.StdoutPipe()
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			if l, err := bufio.NewReader(out).ReadString('\n'); err != nil || l != "started\n" {
				t.Fatalf("box did not start: %q %v", l, err)
			}
			var ours []int
			for pid, argv := range helpers(t) {
				if _, old := before[pid]; !old {
					ours = append(ours, pid)
					t.Logf("running: %d %s", pid, argv)
				}
			}
			if len(ours) == 0 || (d != "gvisor" && len(ours) < 2) {
				t.Fatalf("the helper and driver processes of the box were not found: %v", ours)
			}
			c.Process.Signal(syscall.SIGKILL)
			c.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for {
				left := helpers(t)
				var stray []string
				for _, pid := range ours {
					if argv, ok := left[pid]; ok {
						stray = append(stray, fmt.Sprintf("%d %s", pid, argv))
					}
				}
				if len(stray) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after SIGKILL of devbox run, still running: %v", stray)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The published port is free again.
			l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", hp))
			if err != nil {
				t.Errorf("published port %d still taken: %v", hp, err)
			} else {
				l.Close()
			}
		})
	}
	t.Run("stop", func(t *testing.T) {
		e.stopBoxesAtCleanup()
		before := helpers(t)
		e.ok("create", "stopme", "--image", "busybox", "--net", "slirp", "--grace", "60")
		e.ok("exec", "stopme", "--", "true")
		if len(helpers(t)) <= len(before) {
			t.Fatal("no helper for the running box")
		}
		e.ok("stop", "stopme")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			left := helpers(t)
			stray := 0
			for pid := range left {
				if _, old := before[pid]; !old {
					stray++
				}
			}
			if stray == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after devbox stop, still running: %v", left)
			}
		}
	})
}
