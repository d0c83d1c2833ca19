package network

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// The addresses of a box on every user-mode driver (the layout of
// slirp4netns, which rootlesskit's pasta driver and devbox's gvisor driver
// follow): the box is BoxIP in Subnet, Gateway is the host (its loopback
// unless host-loopback mapping is off), DNS the driver's resolver.
const (
	Subnet  = "10.0.2.0/24"
	BoxIP   = "10.0.2.100"
	Gateway = "10.0.2.2"
	DNS     = "10.0.2.3"
	// Prefix is the length of Subnet.
	Prefix = 24
	// MTU is what every driver gets: the largest an Ethernet tap takes.
	MTU = 65520
	// Device is the box's interface.
	Device = "tap0"
	// HostName names the host's loopback from inside a box.
	HostName = "host.devbox.internal"
)

// LinkLocal4 is IPv4's link-local range: what answers there is reached
// only from the host itself (cloud metadata services, with the machine's
// credentials, at 169.254.169.254). A box without host loopback does not
// reach it (docs/security.md, "Host loopback").
var LinkLocal4 = netip.MustParsePrefix("169.254.0.0/16")

// GvisorConfig is what the gvisor driver tells the box (always the same):
// the helper's driver and, for an early start (Message.Early), the box
// init itself use it.
func GvisorConfig(mtu int) DriverConfig {
	return DriverConfig{Dev: Device, IP: BoxIP, Netmask: Prefix, Gateway: Gateway, DNS: []string{DNS}, MTU: mtu}
}

// SubnetIPNet is Subnet as the drivers take it.
func SubnetIPNet() *net.IPNet {
	_, n, _ := net.ParseCIDR(Subnet)
	return n
}

// EtcHosts is the box's /etc/hosts: localhost, the box's own name on its
// address, and host.devbox.internal on the gateway when the host's
// loopback is reachable.
func EtcHosts(hostname string, hostLoopback bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", BoxIP, hostname)
	if hostLoopback {
		fmt.Fprintf(&b, "%s\t%s\n", Gateway, HostName)
	}
	return b.String()
}

// LocalNames are the names a box's own resolver answers, lower case with
// a trailing dot: the box's hostname with its address, and
// host.devbox.internal with the gateway when the host's loopback is
// reachable. /etc/hosts has them too, but images without nsswitch.conf
// (musl, static programs) resolve by DNS only.
func LocalNames(hostname string, hostLoopback bool) map[string]netip.Addr {
	m := map[string]netip.Addr{}
	if hostname != "" {
		m[strings.ToLower(strings.TrimSuffix(hostname, "."))+"."] = netip.MustParseAddr(BoxIP)
	}
	if hostLoopback {
		m[HostName+"."] = netip.MustParseAddr(Gateway)
	}
	return m
}

// ResolvConf is the box's /etc/resolv.conf: the driver's resolver, with
// the search domains and options of the host's resolv.conf (hostConf).
func ResolvConf(hostConf string) string {
	var b strings.Builder
	b.WriteString("# written by devbox: the user-mode DNS forwards to the host's resolvers\n")
	fmt.Fprintf(&b, "nameserver %s\n", DNS)
	for line := range strings.Lines(hostConf) {
		f := strings.Fields(line)
		if len(f) > 1 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
			b.WriteString(strings.Join(f, " ") + "\n")
		}
	}
	return b.String()
}
