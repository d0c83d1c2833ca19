package gvisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api"
	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	rknet "github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/network/tapfilter"
)

// DriverName is what Info reports.
const DriverName = network.DriverGvisor

// gatewayMAC is the stack's link address: locally administered, fixed, so
// a restarted helper answers with the same one.
const gatewayMAC = "\x5a\x94\xef\xe4\x0c\xdd"

// Options configure the parent driver.
type Options struct {
	MTU int // 0: network.MTU
	// HostLoopback maps the gateway to the host's 127.0.0.1.
	HostLoopback bool
	// DNS are upstream resolvers ("ip" or "ip:port"); empty: the host's
	// /etc/resolv.conf at the time of each query.
	DNS []string
	// Names are answered by the resolver itself (network.LocalNames).
	Names map[string]netip.Addr
	Log   io.Writer
}

// Parent is the host side. ConfigureNetwork only reserves the addresses;
// the stack starts on the tap the child hands over (Attach).
type Parent struct {
	opts Options

	mu     sync.Mutex
	stack  *stack.Stack
	tap    *os.File
	closed bool
	dns    *dnsRelay
	udp    *udpFlows
}

var _ rknet.ParentDriver = (*Parent)(nil)

// NewParentDriver returns the host side of the driver.
func NewParentDriver(o Options) *Parent {
	if o.MTU <= 0 {
		o.MTU = network.MTU
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return &Parent{opts: o}
}

// Info implements rknet.ParentDriver.
func (d *Parent) Info(context.Context) (*api.NetworkDriverInfo, error) {
	return &api.NetworkDriverInfo{
		Driver:  DriverName,
		DNS:     []net.IP{net.ParseIP(network.DNS)},
		ChildIP: net.ParseIP(network.BoxIP),
	}, nil
}

// MTU implements rknet.ParentDriver.
func (d *Parent) MTU() int { return d.opts.MTU }

// ConfigureNetwork implements rknet.ParentDriver. Nothing runs yet: the
// child creates the tap in its network namespace and passes it to Attach.
func (d *Parent) ConfigureNetwork(childPID int, stateDir, detachedNetNSPath string) (*messages.ParentInitNetworkDriverCompleted, func() error, error) {
	if detachedNetNSPath != "" {
		return nil, nil, errors.New("gvisor driver: a detached network namespace is not supported")
	}
	c := network.GvisorConfig(d.opts.MTU)
	msg := &messages.ParentInitNetworkDriverCompleted{Dev: c.Dev, IP: c.IP, Netmask: c.Netmask, Gateway: c.Gateway, DNS: c.DNS, MTU: c.MTU}
	return msg, d.Close, nil
}

// Attach starts the stack on the box's tap device. The driver owns tap
// from now on.
func (d *Parent) Attach(tap *os.File) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		tap.Close()
		return errors.New("gvisor driver: closed")
	}
	if d.stack != nil {
		tap.Close()
		return errors.New("gvisor driver: already attached")
	}
	// Frames to the loopback never reach the stack (gVisor drops them too,
	// and the handlers below refuse them again). The box's init attached
	// the same filter before the tap left it (network/child), so frames
	// queued before the helper started were filtered too; attaching it
	// here again keeps that true for a tap from anywhere.
	if err := tapfilter.Attach(tap.Fd()); err != nil {
		tap.Close()
		return fmt.Errorf("gvisor driver: %w", err)
	}
	s, dns, err := newStack(int(tap.Fd()), d.opts)
	if err != nil {
		tap.Close()
		return fmt.Errorf("gvisor driver: %w", err)
	}
	d.stack, d.tap, d.dns, d.udp = s, tap, dns.relay, dns.udp
	return nil
}

// Close stops the stack and closes the tap, which removes the box's
// interface.
func (d *Parent) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.dns != nil {
		d.dns.close()
	}
	if d.udp != nil {
		d.udp.close()
	}
	if d.stack != nil {
		d.stack.Close()
		d.stack.Wait()
	}
	if d.tap != nil {
		return d.tap.Close()
	}
	return nil
}

// parts are what newStack started besides the stack.
type parts struct {
	relay *dnsRelay
	udp   *udpFlows
}

func newStack(fd int, o Options) (*stack.Stack, parts, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	tune(s)
	ep, err := fdbased.New(&fdbased.Options{
		FDs:            []int{fd},
		MTU:            uint32(o.MTU),
		EthernetHeader: true,
		Address:        tcpip.LinkAddress(gatewayMAC),
		// The box's kernel checksums what it writes to a tap without a
		// virtio-net header.
		RXChecksumOffload:  true,
		PacketDispatchMode: fdbased.Readv,
	})
	if err != nil {
		return nil, parts{}, fmt.Errorf("attaching the tap: %w", err)
	}
	if terr := s.CreateNIC(1, ep); terr != nil {
		return nil, parts{}, fmt.Errorf("creating the NIC: %s", terr)
	}
	for _, a := range []string{network.Gateway, network.DNS} {
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr4(a).WithPrefix()}
		if terr := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); terr != nil {
			return nil, parts{}, fmt.Errorf("adding %s: %s", a, terr)
		}
	}
	// The stack answers for every destination: the forwarders turn the
	// box's flows into host sockets.
	s.SetSpoofing(1, true)
	s.SetPromiscuousMode(1, true)
	subnet, err := tcpip.NewSubnet(addr4("10.0.2.0"), tcpip.MaskFromBytes(net.CIDRMask(network.Prefix, 32)))
	if err != nil {
		return nil, parts{}, err
	}
	s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: 1}})

	nat := map[tcpip.Address]tcpip.Address{}
	if o.HostLoopback {
		nat[addr4(network.Gateway)] = addr4("127.0.0.1")
	}
	tcpFwd := tcpForwarder(s, nat, newBudget(tcpBudget, fastShare, maxTCPConns, o.Log))
	flows := newUDPFlows(s, nat, o.Log)
	udpFwd := flows.forwarder()
	blocked := func(a tcpip.Address) bool { return blocked(a, subnet, nat, o.HostLoopback) }
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if blocked(id.LocalAddress) {
			return false // the stack answers with a reset
		}
		return tcpFwd.HandlePacket(id, pkt)
	})
	s.SetTransportProtocolHandler(udp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if blocked(id.LocalAddress) || linkLocal(id.LocalAddress) {
			return false
		}
		return udpFwd.HandlePacket(id, pkt)
	})
	dns, err := startDNS(s, addr4(network.DNS), o.DNS, o.Names, o.Log)
	if err != nil {
		flows.close()
		return nil, parts{}, err
	}
	ok = true
	return s, parts{dns, flows}, nil
}

// blocked reports whether the forwarders must refuse a flow of the box to
// dst: addresses of the box's subnet that are not mapped (the gateway
// without host loopback) are the box's own network, never dialled on the
// host's; the host's loopback and "this network" (0.0.0.0/8, which the
// host's kernel connects to its loopback), multicast and broadcast are
// refused whatever a raw frame of the box says; without host loopback,
// so are link-local addresses, which only the host reaches (a cloud's
// metadata service).
func blocked(dst tcpip.Address, subnet tcpip.Subnet, nat map[tcpip.Address]tcpip.Address, hostLoopback bool) bool {
	if _, mapped := nat[dst]; mapped {
		return false
	}
	if subnet.Contains(dst) || dst.Len() != 4 {
		return true
	}
	if !hostLoopback && linkLocal(dst) {
		return true
	}
	b := dst.As4()
	return b[0] == 127 || b[0] == 0 || b[0] >= 224
}

// linkLocal reports whether a is in 169.254.0.0/16 (cloud metadata
// services live there; UDP to them is not forwarded).
func linkLocal(a tcpip.Address) bool {
	return a.Len() == 4 && network.LinkLocal4.Contains(netip.AddrFrom4(a.As4()))
}

// tune sizes TCP for a fast local link: SACK, and buffers that let one
// flow fill a 64 KiB MTU. The maxima bound what the forwarder's fast
// connections may grow to (budget.go); small connections set their own.
func tune(s *stack.Stack) {
	sack := tcpip.TCPSACKEnabled(true)
	_ = s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	// The defaults are for the DNS relay's connections; forwarded ones
	// start with 1 MiB (tcp.NewForwarder) and set their tier's sizes.
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 64 << 10, Max: fastRcv}
	_ = s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 64 << 10, Max: fastSnd}
	_ = s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd)
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	_ = s.SetTransportProtocolOption(tcp.ProtocolNumber, &mod)
}

func addr4(s string) tcpip.Address {
	return tcpip.AddrFrom4Slice(net.ParseIP(s).To4())
}
