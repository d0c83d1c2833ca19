package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultHostIP is where a published port listens when -p names no
// address: the host's loopback. devbox is for a laptop; a dev server is not
// for the café's Wi-Fi unless you say so (-p 0.0.0.0:8080:80).
const DefaultHostIP = "127.0.0.1"

// PortSpec is one published port: HostIP:HostPort on the host reaches
// BoxPort inside the box.
type PortSpec struct {
	Proto    string `json:"proto"` // "tcp" or "udp"
	HostIP   string `json:"hostIP"`
	HostPort int    `json:"hostPort"`
	BoxPort  int    `json:"boxPort"`
}

// String renders s the way ParsePort reads it.
func (s PortSpec) String() string {
	ip := s.HostIP
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() {
		ip = "[" + ip + "]"
	}
	return fmt.Sprintf("%s:%d:%d/%s", ip, s.HostPort, s.BoxPort, s.Proto)
}

// HostAddr is the host address and port, as net.Listen takes it.
func (s PortSpec) HostAddr() string {
	return netip.AddrPortFrom(netip.MustParseAddr(s.HostIP), uint16(s.HostPort)).String()
}

// ParsePort parses -p [HOST_IP:]HOST_PORT:BOX_PORT[/tcp|/udp]. An IPv6
// HOST_IP is written in brackets: [::1]:8080:80. HOST_IP defaults to
// DefaultHostIP and the protocol to tcp.
func ParsePort(s string) (PortSpec, error) {
	bad := func(why string) (PortSpec, error) {
		return PortSpec{}, fmt.Errorf("invalid --publish %q: %s (hint: use [HOST_IP:]HOST_PORT:BOX_PORT[/tcp|/udp], e.g. -p 8080:80 or -p 0.0.0.0:5353:53/udp)", s, why)
	}
	spec := PortSpec{Proto: "tcp", HostIP: DefaultHostIP}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		switch p := strings.ToLower(rest[i+1:]); p {
		case "tcp", "udp":
			spec.Proto = p
		default:
			return bad("the protocol must be tcp or udp")
		}
		rest = rest[:i]
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 || len(rest) < end+2 || rest[end+1] != ':' {
			return bad("an IPv6 address must be followed by ]:HOST_PORT:BOX_PORT")
		}
		a, err := netip.ParseAddr(rest[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return bad("the address in brackets is not an IPv6 address")
		}
		spec.HostIP = a.String()
		rest = rest[end+2:]
		if strings.Count(rest, ":") != 1 {
			return bad("want [HOST_IP]:HOST_PORT:BOX_PORT")
		}
	} else {
		switch strings.Count(rest, ":") {
		case 1:
		case 2:
			ip, r, _ := strings.Cut(rest, ":")
			a, err := netip.ParseAddr(ip)
			if err != nil || !a.Is4() {
				return bad("the host address must be an IPv4 address, or an IPv6 address in brackets")
			}
			spec.HostIP, rest = a.String(), r
		case 0:
			return bad("both the host port and the box port are needed")
		default:
			return bad("an IPv6 host address must be written in brackets, e.g. [::1]:8080:80")
		}
	}
	hp, bp, _ := strings.Cut(rest, ":")
	var err error
	if spec.HostPort, err = parsePortNumber(hp); err != nil {
		return bad("host port: " + err.Error())
	}
	if spec.BoxPort, err = parsePortNumber(bp); err != nil {
		return bad("box port: " + err.Error())
	}
	return spec, nil
}

func parsePortNumber(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s is not between 1 and 65535", s)
	}
	return n, nil
}

// ParsePorts parses every -p value and rejects two that claim the same
// host address and port.
func ParsePorts(values []string) ([]PortSpec, error) {
	var out []PortSpec
	for _, v := range values {
		p, err := ParsePort(v)
		if err != nil {
			return nil, err
		}
		for _, q := range out {
			if q.Proto == p.Proto && q.HostPort == p.HostPort && (q.HostIP == p.HostIP || unspecified(q.HostIP) || unspecified(p.HostIP)) {
				return nil, fmt.Errorf("--publish %s and %s both claim host port %d/%s (hint: give each a different host port)", q, p, p.HostPort, p.Proto)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func unspecified(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.IsUnspecified()
}

// Port is a forward in place on a running box: what devbox ports and
// devbox inspect show.
type Port struct {
	PortSpec
	// BoxIP is the address the box listens on (auto-forwards), or "" for a
	// published port.
	BoxIP string `json:"boxIP,omitempty"`
	// Auto marks a forward devbox made because a process in the box
	// listens on the port.
	Auto bool `json:"auto,omitempty"`
	// NotForwarded, when set, says why this box port has no forward: its
	// host port (HostIP:HostPort) is taken by another listener. devbox
	// never moves such a forward to another port.
	NotForwarded string `json:"notForwarded,omitempty"`
}
