package gvisor

import (
	"net"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/devbox-dev/devbox/network"
)

func TestBlocked(t *testing.T) {
	subnet, err := tcpip.NewSubnet(addr4("10.0.2.0"), tcpip.MaskFromBytes(net.CIDRMask(network.Prefix, 32)))
	if err != nil {
		t.Fatal(err)
	}
	on := map[tcpip.Address]tcpip.Address{addr4(network.Gateway): addr4("127.0.0.1")}
	for _, tc := range []struct {
		dst     string
		off, on bool // blocked without and with host loopback
	}{
		{"10.0.2.2", true, false},
		{"10.0.2.3", true, true}, // the DNS relay listens there itself
		{"10.0.2.77", true, true},
		{"127.0.0.1", true, true},
		{"127.1.2.3", true, true},
		{"0.0.0.0", true, true},
		{"0.0.0.7", true, true},
		{"224.0.0.1", true, true},
		{"255.255.255.255", true, true},
		{"93.184.215.14", false, false},
		{"192.168.1.10", false, false},
		{"128.0.0.1", false, false},
		// Link-local: a cloud's metadata service answers at
		// 169.254.169.254 to the host alone.
		{"169.254.169.254", true, false},
		{"169.254.0.1", true, false},
		{"169.253.255.255", false, false},
		{"169.255.0.1", false, false},
	} {
		if got := blocked(addr4(tc.dst), subnet, map[tcpip.Address]tcpip.Address{}, false); got != tc.off {
			t.Errorf("without host loopback: blocked(%s) = %v, want %v", tc.dst, got, tc.off)
		}
		if got := blocked(addr4(tc.dst), subnet, on, true); got != tc.on {
			t.Errorf("with host loopback: blocked(%s) = %v, want %v", tc.dst, got, tc.on)
		}
	}
}
