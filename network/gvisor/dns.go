package gvisor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// dnsRelay answers the box's DNS queries on the driver's resolver address
// by relaying them, unchanged, to upstream servers on the host's network:
// every record type, TTL and error code reaches the box as the upstream
// sent it. Upstreams are the configured ones, else the nameservers of the
// host's /etc/resolv.conf (re-read when it changes).
type dnsRelay struct {
	udp   *gonet.UDPConn
	tcp   *gonet.TCPListener
	fixed []string
	names map[string]netip.Addr
	log   io.Writer

	mu       sync.Mutex
	hostConf []string
	confTime time.Time
	confRead time.Time

	sem    chan struct{}
	tcpSem chan struct{}

	logMu   sync.Mutex
	lastLog time.Time
}

const (
	dnsTimeout  = 3 * time.Second // per upstream and attempt
	dnsMaxFlows = 128             // queries relayed at once
	// dnsMaxTCP caps the box's DNS-over-TCP connections relayed at once
	// (each is one connection of the helper to an upstream); one over it
	// is closed at once.
	dnsMaxTCP = 16
	// dnsTCPBacklog bounds the connections gVisor completes and queues
	// for the relay.
	dnsTCPBacklog = 64
	// dnsTCPLife is how long one DNS-over-TCP connection may last.
	dnsTCPLife = 30 * time.Second
	resolvConf = "/etc/resolv.conf"
)

func startDNS(s *stack.Stack, addr tcpip.Address, upstream []string, names map[string]netip.Addr, log io.Writer) (*dnsRelay, error) {
	fixed, err := NormalizeUpstreams(upstream)
	if err != nil {
		return nil, err
	}
	full := tcpip.FullAddress{NIC: 1, Addr: addr, Port: 53}
	uc, err := gonet.DialUDP(s, &full, nil, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("DNS on %s: %w", addr, err)
	}
	tl, err := listenTCP(s, full, dnsTCPBacklog)
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("DNS on %s: %w", addr, err)
	}
	r := &dnsRelay{udp: uc, tcp: tl, fixed: fixed, names: names, log: log, sem: make(chan struct{}, dnsMaxFlows),
		tcpSem: make(chan struct{}, dnsMaxTCP)}
	go r.serveUDP()
	go r.serveTCP()
	return r, nil
}

// listenTCP is gonet.ListenTCP with a backlog of our choosing (gonet's is
// 4096).
func listenTCP(s *stack.Stack, addr tcpip.FullAddress, backlog int) (*gonet.TCPListener, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, errors.New(terr.String())
	}
	if terr := ep.Bind(addr); terr != nil {
		ep.Close()
		return nil, errors.New(terr.String())
	}
	if terr := ep.Listen(backlog); terr != nil {
		ep.Close()
		return nil, errors.New(terr.String())
	}
	return gonet.NewTCPListener(s, &wq, ep), nil
}

func (r *dnsRelay) close() {
	r.udp.Close()
	r.tcp.Close()
}

// NormalizeUpstreams checks upstream resolvers ("ip" or "ip:port", IPv6
// in brackets with a port) and adds the default port 53.
func NormalizeUpstreams(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53).String())
			continue
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil || ap.Port() == 0 {
			return nil, fmt.Errorf("invalid DNS server %q (hint: write an IP address, optionally with a port: 192.0.2.53, 127.0.0.1:5353, [::1]:5353)", s)
		}
		out = append(out, ap.String())
	}
	return out, nil
}

// upstreams returns the servers to ask, in order.
func (r *dnsRelay) upstreams() []string {
	if len(r.fixed) > 0 {
		return r.fixed
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.confRead) > 2*time.Second || r.hostConf == nil {
		r.confRead = time.Now()
		fi, err := os.Stat(resolvConf)
		if err != nil || !fi.ModTime().Equal(r.confTime) || r.hostConf == nil {
			r.hostConf = hostNameservers(resolvConf)
			if err == nil {
				r.confTime = fi.ModTime()
			}
		}
	}
	return r.hostConf
}

// hostNameservers reads the nameservers of a resolv.conf; like the C
// library, it falls back to the local host.
func hostNameservers(path string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(a.WithZone(""), 53).String())
	}
	if len(out) == 0 {
		out = []string{"127.0.0.1:53"}
	}
	return out
}

func (r *dnsRelay) serveUDP() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 12 { // shorter than a DNS header
			continue
		}
		if ans := localAnswer(buf[:n], r.names); ans != nil {
			_, _ = r.udp.WriteTo(ans, from)
			continue
		}
		q := append([]byte(nil), buf[:n]...)
		select {
		case r.sem <- struct{}{}:
		default:
			continue // overloaded: the client retries
		}
		go func() {
			defer func() { <-r.sem }()
			if ans := r.exchangeUDP(q); ans != nil {
				_, _ = r.udp.WriteTo(ans, from)
			}
		}()
	}
}

// exchangeUDP asks each upstream in turn and returns the first answer
// that matches the query's ID.
func (r *dnsRelay) exchangeUDP(q []byte) []byte {
	buf := make([]byte, 64<<10)
	for _, up := range r.upstreams() {
		c, err := net.Dial("udp", up)
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(dnsTimeout))
		if _, err := c.Write(q); err != nil {
			c.Close()
			continue
		}
		for {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			if n >= 12 && buf[0] == q[0] && buf[1] == q[1] {
				c.Close()
				return append([]byte(nil), buf[:n]...)
			}
		}
		c.Close()
	}
	return nil
}

func (r *dnsRelay) serveTCP() {
	for {
		c, err := r.tcp.Accept()
		if err != nil {
			return
		}
		select {
		case r.tcpSem <- struct{}{}:
		default:
			c.Close()
			r.logCap()
			continue
		}
		go func() {
			defer func() { <-r.tcpSem }()
			r.relayTCP(c)
		}()
	}
}

// relayTCP connects a DNS-over-TCP client to the first upstream that
// accepts a connection and copies both ways.
func (r *dnsRelay) relayTCP(c net.Conn) {
	defer c.Close()
	var up net.Conn
	for _, addr := range r.upstreams() {
		var err error
		if up, err = net.DialTimeout("tcp", addr, dnsTimeout); err == nil {
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	deadline := time.Now().Add(dnsTCPLife)
	_ = c.SetDeadline(deadline)
	_ = up.SetDeadline(deadline)
	done := make(chan struct{})
	go func() {
		_, _ = io.CopyBuffer(up, struct{ io.Reader }{c}, make([]byte, 4<<10))
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, err := io.CopyBuffer(c, struct{ io.Reader }{up}, make([]byte, 4<<10))
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		fmt.Fprintf(r.log, "devbox: DNS over TCP: %v\n", err)
	}
	c.Close()
	<-done
}

// logCap says, at most every 10 s, that DNS-over-TCP connections are being
// refused.
func (r *dnsRelay) logCap() {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if time.Since(r.lastLog) < 10*time.Second {
		return
	}
	r.lastLog = time.Now()
	fmt.Fprintf(r.log, "devbox: network helper: the box has %d DNS-over-TCP connections open, the cap: closing new ones\n", dnsMaxTCP)
}

// localTTL is the TTL of the resolver's own answers.
const localTTL = 60

// localAnswer answers a query (one question, class IN) for one of names
// (lower case, trailing dot) itself: the address for A (or ANY), an empty
// answer for every other type — the name exists, with no such record.
// Anything else is nil: relayed upstream as it is.
func localAnswer(q []byte, names map[string]netip.Addr) []byte {
	if len(names) == 0 || len(q) < 12 || q[2]&0xf8 != 0 || q[4] != 0 || q[5] != 1 || q[6]|q[7]|q[8]|q[9] != 0 {
		return nil // a response, an opcode other than QUERY, or not one question without answers
	}
	var name strings.Builder
	i := 12
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) || name.Len()+l+1 > 255 {
			return nil // a compression pointer or a malformed label
		}
		name.WriteString(strings.ToLower(string(q[i : i+l])))
		name.WriteByte('.')
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype, qclass := int(q[i])<<8|int(q[i+1]), int(q[i+2])<<8|int(q[i+3])
	addr, ok := names[name.String()]
	if !ok || qclass != 1 || !addr.Is4() {
		return nil
	}
	question := q[12 : i+4]
	ans := make([]byte, 0, 12+len(question)+16)
	// ID; QR, AA and the query's RD; RA; one question.
	ans = append(ans, q[0], q[1], 0x84|q[2]&0x01, 0x80, 0, 1, 0, 0, 0, 0, 0, 0)
	ans = append(ans, question...)
	if qtype == 1 || qtype == 255 {
		ans[7] = 1
		a := addr.As4()
		ans = append(ans, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, localTTL, 0, 4, a[0], a[1], a[2], a[3])
	}
	return ans
}
