package helper

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Listener is a TCP socket listening in the box.
type Listener struct {
	Addr netip.Addr // the bound address (unspecified: all)
	Port int
}

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// ParseProcNetTCP returns the listening sockets of a /proc/net/tcp or
// /proc/net/tcp6 table. Addresses there are in hex, each 32-bit word in
// host byte order; ports are big-endian hex.
func ParseProcNetTCP(table string) []Listener {
	var out []Listener
	for i, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 || f[3] != tcpListen {
			continue
		}
		host, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil || p == 0 {
			continue
		}
		raw, err := hex.DecodeString(host)
		if err != nil || (len(raw) != 4 && len(raw) != 16) {
			continue
		}
		// Each 32-bit word was printed from host byte order.
		b := make([]byte, len(raw))
		for w := 0; w < len(raw); w += 4 {
			binary.BigEndian.PutUint32(b[w:], binary.NativeEndian.Uint32(raw[w:]))
		}
		a, _ := netip.AddrFromSlice(b)
		out = append(out, Listener{Addr: a.Unmap(), Port: int(p)})
	}
	return out
}

// forwardable reduces the box's listeners to one per port, with the
// address to dial inside the box: a socket on all addresses or a loopback
// one is reached on loopback; one bound to another address on that
// address. Ports in skip (published ones) are left out.
func forwardable(ls []Listener, skip map[int]bool) map[int]netip.Addr {
	out := map[int]netip.Addr{}
	sort.Slice(ls, func(i, j int) bool { return rank(ls[i].Addr) < rank(ls[j].Addr) })
	for _, l := range ls {
		if skip[l.Port] {
			continue
		}
		if _, seen := out[l.Port]; seen {
			continue
		}
		var dial netip.Addr
		switch {
		case l.Addr == netip.IPv4Unspecified():
			dial = netip.MustParseAddr("127.0.0.1")
		case l.Addr == netip.IPv6Unspecified():
			// A v6 socket on :: also takes ::1 when it is v6-only.
			dial = netip.IPv6Loopback()
		default:
			dial = l.Addr
		}
		out[l.Port] = dial
	}
	return out
}

// rank prefers, for one port, a wildcard v4 socket, then v4 loopback,
// then the rest.
func rank(a netip.Addr) int {
	switch {
	case a == netip.IPv4Unspecified():
		return 0
	case a.Is4() && a.IsLoopback():
		return 1
	case a == netip.IPv6Unspecified():
		return 2
	case a.IsLoopback():
		return 3
	}
	return 4
}

// hostPort is the one host port for box port p: the same number, or, for
// a privileged port (below start, the host's
// net.ipv4.ip_unprivileged_port_start), that number plus 8000 (80 → 8080,
// 443 → 8443; 0 when that is past 65535). There is no next candidate: a
// port taken on the host is someone else's listener, and moving the
// forward elsewhere would leave them the connections meant for the box.
func hostPort(p, start int) int {
	if p >= start {
		return p
	}
	if p+8000 > 65535 {
		return 0
	}
	return p + 8000
}
