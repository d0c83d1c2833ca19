//go:build integration

package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Escape class "network helper budget" (docs/security.md): a box must not
// make its network helper (devbox-net, gvisor driver) grow without bound:
// TCP connections to a host peer that does not read, DNS over TCP to the
// relay, and UDP flows. The attacks run in a box as the test binary
// (stage netFloodStage, netFloodMain) and only address the host's loopback
// through the gateway (--host-loopback) and the box's own DNS relay.

// netFloodStage is the stage of the test binary that floods from a box.
const netFloodStage = "netflood"

// The bounds the tests hold the helper to (docs/network.md).
const (
	helperRSSBound    = 64 << 20 // bytes of VmRSS under the TCP flood
	dnsTCPCap         = 16       // network/gvisor dnsMaxTCP
	udpFlowCap        = 512      // network/gvisor maxUDPFlows
	helperFDsOfItsOwn = 64       // descriptors that are not UDP flows
)

func init() {
	// The stage runs before TestMain: this file leaves main_test.go alone.
	if os.Getenv(stageEnv) == netFloodStage {
		os.Exit(netFloodMain())
	}
}

// helperWatch samples the newest devbox-net process started after before
// until it exits: the largest VmRSS and number of open descriptors.
type helperWatch struct {
	pid            atomic.Int64
	maxRSS, maxFDs atomic.Int64
	stop, done     chan struct{}
}

func watchHelper(t *testing.T, before map[int]string) *helperWatch {
	w := &helperWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			pid := int(w.pid.Load())
			if pid == 0 {
				for p, argv := range helpers(t) {
					if _, old := before[p]; !old && strings.HasPrefix(argv, "devbox-net") {
						pid = p
						w.pid.Store(int64(p))
					}
				}
				if pid == 0 {
					continue
				}
			}
			if rss := vmRSS(pid); rss > w.maxRSS.Load() {
				w.maxRSS.Store(rss)
			}
			if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil && int64(len(ents)) > w.maxFDs.Load() {
				w.maxFDs.Store(int64(len(ents)))
			}
		}
	}()
	return w
}

func (w *helperWatch) finish() {
	close(w.stop)
	<-w.done
}

// vmRSS is the resident set of pid in bytes (0 when it is gone).
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// floodBox runs the flood stage in a debian box with extra devbox flags and
// the stage's arguments, and returns what it printed.
func floodBox(t *testing.T, e *env, flags []string, stageArgs ...string) result {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"run", "--net", "gvisor", "-e", stageEnv + "=" + netFloodStage}, flags...)
	args = append(args, "debian", "--", "sh", "-c", `cat > /tmp/flood && chmod +x /tmp/flood && exec /tmp/flood "$@"`, "sh")
	r := e.runIn(self, append(args, stageArgs...)...)
	t.Logf("box said:\n%s%s", r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("the flood box failed (exit %d)", r.code)
	}
	return r
}

// field returns the integer after "key " in the box's output (-1: none).
func field(out, key string) int {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+" "); ok {
			n, err := strconv.Atoi(v)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// stallListener accepts TCP connections on the host's loopback and never
// reads from them (small receive buffers: the host's memory is not what
// is tested).
func stallListener(t *testing.T) (port int, accepted *atomic.Int64) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<10)
		})
	}}
	l, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	accepted = new(atomic.Int64)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, accepted
}

// TestEscapeNetBudgetStalledTCP: 1000 connections from the box to a host
// listener that accepts and never reads, each box side writing all it
// can. The helper's RSS stays under helperRSSBound (it held 2 GB before
// the budget), and the box's network works once the flood ended.
func TestEscapeNetBudgetStalledTCP(t *testing.T) {
	e := newEnv(t)
	port, accepted := stallListener(t)
	echo := tcpServer(t, "still-works")
	w := watchHelper(t, helpers(t))
	r := floodBox(t, e, []string{"--host-loopback"}, "tcp", fmt.Sprintf("10.0.2.2:%d", port), "1000", "10",
		fmt.Sprintf("10.0.2.2:%d", echo))
	w.finish()
	rss := w.maxRSS.Load()
	t.Logf("helper %d: largest VmRSS %.1f MiB; box: %d connections stalled, %d refused; host accepted %d",
		w.pid.Load(), float64(rss)/(1<<20), field(r.stdout, "opened"), field(r.stdout, "refused"), accepted.Load())
	if w.pid.Load() == 0 || rss == 0 {
		t.Fatal("control: no network helper was seen")
	}
	if n := field(r.stdout, "opened"); n < 100 || accepted.Load() < 100 {
		t.Fatalf("control: only %d connections were made (host accepted %d): the attack did not run as meant", n, accepted.Load())
	}
	if field(r.stdout, "written-mib") < 1 {
		t.Errorf("control: the box wrote less than 1 MiB into the stalled connections")
	}
	if rss > helperRSSBound {
		t.Errorf("the helper grew to %.1f MiB of RSS, over the bound of %d MiB", float64(rss)/(1<<20), helperRSSBound>>20)
	}
	if !strings.Contains(r.stdout, "after still-works") {
		t.Errorf("the box's network did not work after the flood: %q", r.stdout)
	}
}

// upstreamTCP is a DNS-over-TCP "server" on the host's loopback that never
// answers, and counts the connections it holds at once.
func upstreamTCP(t *testing.T) (port int, now, most *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	now, most = new(atomic.Int64), new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if n := now.Add(1); n > most.Load() {
				most.Store(n)
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				c.Close()
				now.Add(-1)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, now, most
}

// TestEscapeNetBudgetDNSTCP: 3000 DNS-over-TCP connections to the box's
// resolver, from a sandboxed box (no host loopback). The relay holds at
// most dnsTCPCap connections to the upstream (each was one before).
func TestEscapeNetBudgetDNSTCP(t *testing.T) {
	e := newEnv(t)
	port, _, most := upstreamTCP(t)
	e.setConfig(fmt.Sprintf("[network]\ndns = [\"127.0.0.1:%d\"]\n", port))
	w := watchHelper(t, helpers(t))
	r := floodBox(t, e, nil, "dnstcp", "10.0.2.3:53", "3000", "6")
	w.finish()
	t.Logf("upstream held at most %d connections at once; box opened %d; helper: %d descriptors, %.1f MiB at most",
		most.Load(), field(r.stdout, "opened"), w.maxFDs.Load(), float64(w.maxRSS.Load())/(1<<20))
	if most.Load() == 0 {
		t.Fatal("control: no DNS-over-TCP connection reached the upstream")
	}
	if most.Load() > dnsTCPCap {
		t.Errorf("%d connections to the upstream at once, over the cap of %d", most.Load(), dnsTCPCap)
	}
	if w.maxFDs.Load() > helperFDsOfItsOwn+dnsTCPCap {
		t.Errorf("the helper held %d descriptors", w.maxFDs.Load())
	}
}

// TestEscapeNetBudgetUDPFlows: 8000 UDP flows from the box to a host
// listener. The helper holds at most udpFlowCap flow sockets (before: one
// per flow for 90 s, about 3600 open).
func TestEscapeNetBudgetUDPFlows(t *testing.T) {
	e := newEnv(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var got atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	w := watchHelper(t, helpers(t))
	r := floodBox(t, e, []string{"--host-loopback"}, "udp", pc.LocalAddr().String(), "8000", "4")
	w.finish()
	t.Logf("host received %d datagrams; box sent %d; helper: %d descriptors, %.1f MiB at most",
		got.Load(), field(r.stdout, "sent"), w.maxFDs.Load(), float64(w.maxRSS.Load())/(1<<20))
	if got.Load() < 1000 {
		t.Fatalf("control: the host received %d datagrams: the attack did not run as meant", got.Load())
	}
	if w.maxFDs.Load() > udpFlowCap+helperFDsOfItsOwn {
		t.Errorf("the helper held %d descriptors, over %d flows + %d", w.maxFDs.Load(), udpFlowCap, helperFDsOfItsOwn)
	}
}

// netFloodMain runs in a box: "tcp ADDR N HOLD ECHO", "dnstcp ADDR N HOLD"
// or "udp ADDR N HOLD" (ADDR is what the box dials; for udp the host's
// 127.0.0.1:PORT, reached at the gateway).
func netFloodMain() int {
	a := os.Args[1:]
	if len(a) < 4 {
		fmt.Println("usage: tcp|dnstcp|udp ADDR N HOLD [ECHO]")
		return 2
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	n, _ := strconv.Atoi(a[2])
	hold, _ := strconv.Atoi(a[3])
	var err error
	switch a[0] {
	case "tcp":
		if len(a) < 5 {
			return 2
		}
		err = floodTCP(a[1], n, time.Duration(hold)*time.Second, true, a[4])
	case "dnstcp":
		err = floodTCP(a[1], n, time.Duration(hold)*time.Second, false, "")
	case "udp":
		err = floodUDP(strings.Replace(a[1], "127.0.0.1", "10.0.2.2", 1), n, time.Duration(hold)*time.Second)
	default:
		err = errors.New("unknown flood " + a[0])
	}
	if err != nil {
		fmt.Println("flood:", err)
		return 1
	}
	return 0
}

// floodTCP opens n connections to addr (at most 200 dials at once), each
// writing all it can when write is set, holds them for hold, closes them
// with a reset, and checks that a connection to echo still gets its
// greeting.
func floodTCP(addr string, n int, hold time.Duration, write bool, echo string) error {
	var mu sync.Mutex
	var conns []*net.TCPConn
	var refused atomic.Int64
	var written atomic.Int64
	sem := make(chan struct{}, 200)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
			<-sem
			if err != nil {
				refused.Add(1)
				return
			}
			tc := c.(*net.TCPConn)
			mu.Lock()
			conns = append(conns, tc)
			mu.Unlock()
			if write {
				go func() {
					buf := make([]byte, 64<<10)
					for {
						m, err := tc.Write(buf)
						written.Add(int64(m))
						if err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	wg.Wait()
	time.Sleep(hold)
	mu.Lock()
	fmt.Printf("opened %d\nrefused %d\nwritten-mib %d\n", len(conns), refused.Load(), written.Load()>>20)
	for _, c := range conns {
		_ = c.SetLinger(0)
		c.Close()
	}
	mu.Unlock()
	if echo == "" {
		return nil
	}
	// The helper learns of the resets asynchronously.
	var last error
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		c, err := net.DialTimeout("tcp4", echo, 5*time.Second)
		if err != nil {
			last = err
			continue
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err == nil {
			fmt.Printf("after %s\n", strings.TrimSpace(line))
			return nil
		}
		last = err
	}
	fmt.Printf("after failed: %v\n", last)
	return nil
}

// floodUDP sends one datagram from each of n sockets (so n flows, as far as
// the kernel hands out distinct ports), then waits hold.
func floodUDP(addr string, n int, hold time.Duration) error {
	sent := 0
	for range n {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		if _, err := c.Write([]byte("flow")); err == nil {
			sent++
		}
		c.Close()
	}
	fmt.Printf("sent %d\n", sent)
	time.Sleep(hold)
	return nil
}
