package network

// Config is the [network] table of devbox's configuration file
// (docs/config.md, docs/network.md), as the box lifecycle takes it (from
// cmd/config.Network, which has the same fields). A nil pointer is "not
// set".
type Config struct {
	// Mode is the default --net of devbox run and of new boxes.
	Mode string `toml:"mode"`
	// DNS are the upstream resolvers of the user-mode DNS ("ip" or
	// "ip:port"); empty: the host's /etc/resolv.conf.
	DNS []string `toml:"dns"`
	// HostLoopback maps the gateway (host.devbox.internal) to the host's
	// 127.0.0.1 (default true).
	HostLoopback *bool `toml:"host_loopback"`
	// IPv6 gives boxes IPv6 where the driver has it (default true).
	IPv6 *bool `toml:"ipv6"`
	// AutoPorts forwards the ports a box listens on (default true).
	AutoPorts *bool `toml:"auto_ports"`
}
