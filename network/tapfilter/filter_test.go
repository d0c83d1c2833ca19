package tapfilter

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// run interprets the instructions Program uses, as the kernel does:
// a load beyond the frame drops it.
func run(t *testing.T, p []unix.SockFilter, frame []byte) uint32 {
	t.Helper()
	var a uint32
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		switch in.Code {
		case ldh, ldb, ldw:
			size := map[uint16]int{ldh: 2, ldb: 1, ldw: 4}[in.Code]
			if int(in.K)+size > len(frame) {
				return 0
			}
			b := frame[in.K : int(in.K)+size]
			switch size {
			case 1:
				a = uint32(b[0])
			case 2:
				a = uint32(binary.BigEndian.Uint16(b))
			default:
				a = binary.BigEndian.Uint32(b)
			}
		case ldi:
			a = in.K
		case rsh:
			a >>= in.K
		case and:
			a &= in.K
		case jeq:
			if a == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case ret:
			return in.K
		default:
			t.Fatalf("instruction %#x not interpreted", in.Code)
		}
	}
	t.Fatal("fell off the end")
	return 0
}

func frame(etype uint16, dst string) []byte {
	f := make([]byte, 14+40+20)
	binary.BigEndian.PutUint16(f[12:14], etype)
	if dst == "" {
		return f
	}
	a := netip.MustParseAddr(dst)
	if a.Is4() {
		b := a.As4()
		f[14] = 0x45
		copy(f[offDst4:], b[:])
	} else {
		b := a.As16()
		f[14] = 0x60
		copy(f[offDst6:], b[:])
	}
	return f
}

func TestProgram(t *testing.T) {
	plain := Program()
	gw := Program(netip.MustParsePrefix("10.0.2.2/32"), netip.MustParsePrefix("fd00::2/128"), netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fd00:ec2::/32"))
	for _, p := range [][]unix.SockFilter{plain, gw} {
		if len(p) == 0 || p[len(p)-1].Code != ret {
			t.Fatal("the program must end in a return")
		}
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		keep  bool
		gw    bool // what the program that drops the gateway does
	}{
		{"v4 out", frame(unix.ETH_P_IP, "93.184.215.14"), true, true},
		{"v4 gateway", frame(unix.ETH_P_IP, "10.0.2.2"), true, false},
		{"v4 near gateway", frame(unix.ETH_P_IP, "10.0.2.20"), true, true},
		{"v4 dns", frame(unix.ETH_P_IP, "10.0.2.3"), true, true},
		{"v4 loopback", frame(unix.ETH_P_IP, "127.0.0.1"), false, false},
		{"v4 loopback net", frame(unix.ETH_P_IP, "127.45.6.7"), false, false},
		{"v4 unspecified", frame(unix.ETH_P_IP, "0.0.0.0"), false, false},
		{"v4 this network", frame(unix.ETH_P_IP, "0.1.2.3"), false, false},
		{"v4 128", frame(unix.ETH_P_IP, "128.0.0.1"), true, true},
		{"v4 link-local metadata", frame(unix.ETH_P_IP, "169.254.169.254"), true, false},
		{"v4 link-local low", frame(unix.ETH_P_IP, "169.254.0.0"), true, false},
		{"v4 below link-local", frame(unix.ETH_P_IP, "169.253.255.255"), true, true},
		{"v4 above link-local", frame(unix.ETH_P_IP, "169.255.0.0"), true, true},
		{"v6 in a /32", frame(unix.ETH_P_IPV6, "fd00:ec2::254"), true, false},
		{"v6 next to a /32", frame(unix.ETH_P_IPV6, "fd00:ec3::254"), true, true},
		{"v6 out", frame(unix.ETH_P_IPV6, "2001:db8::1"), true, true},
		{"v6 gateway", frame(unix.ETH_P_IPV6, "fd00::2"), true, false},
		{"v6 near gateway", frame(unix.ETH_P_IPV6, "fd00::3"), true, true},
		{"v6 gateway prefix elsewhere", frame(unix.ETH_P_IPV6, "fd00:1::2"), true, true},
		{"v6 loopback", frame(unix.ETH_P_IPV6, "::1"), false, false},
		{"v6 unspecified", frame(unix.ETH_P_IPV6, "::"), false, false},
		{"v6 mapped loopback", frame(unix.ETH_P_IPV6, "::ffff:127.0.0.1"), false, false},
		{"v6 mapped zero", frame(unix.ETH_P_IPV6, "::ffff:0.0.0.0"), false, false},
		{"v6 mapped out", frame(unix.ETH_P_IPV6, "::ffff:93.184.215.14"), true, true},
		{"v6 compatible loopback", frame(unix.ETH_P_IPV6, "::127.0.0.1"), false, false},
		{"v6 nearly mapped", frame(unix.ETH_P_IPV6, "::fffe:7f00:1"), true, true},
		{"v6 link-local", frame(unix.ETH_P_IPV6, "fe80::1"), true, true},
		{"arp", frame(unix.ETH_P_ARP, ""), true, true},
		{"vlan", frame(0x8100, ""), false, false},
		{"other", frame(0x88cc, ""), false, false},
		{"short", []byte{1, 2, 3}, false, false},
		{"v4 truncated", frame(unix.ETH_P_IP, "")[:20], false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(t, plain, tc.frame); (got != 0) != tc.keep {
				t.Errorf("filter returned %d, want keep=%v", got, tc.keep)
			}
			if got := run(t, gw, tc.frame); (got != 0) != tc.gw {
				t.Errorf("filter dropping the gateway returned %d, want keep=%v", got, tc.gw)
			}
		})
	}
}

func TestAssembleRejectsBadJumps(t *testing.T) {
	for _, ops := range [][]op{
		{{code: jeq, jt: "nowhere"}, {code: ret}},
		{{label: "back", code: ret}, {code: jeq, jt: "back"}},
	} {
		if _, err := assemble(ops); err == nil {
			t.Errorf("assemble(%v) accepted a bad jump", ops)
		}
	}
}
