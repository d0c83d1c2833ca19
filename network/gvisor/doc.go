// Package gvisor is devbox's in-process user-mode network driver: gVisor's
// netstack serves the box's tap device from the network helper on the host,
// and forwarders turn the box's TCP and UDP flows into ordinary sockets of
// the helper (devbox's own, within a memory budget and caps: budget.go,
// udp.go; docs/security.md "Network helper budget"). It implements rootlesskit's
// network.ParentDriver, so the helper drives it exactly like the pasta and
// slirp4netns drivers; its box side (creating the tap) is in network/child,
// which keeps gVisor out of the box init.
//
// It differs from rootlesskit's own gvisortapvsock driver in three ways
// (docs/network.md): the box init creates the tap itself and hands its file
// descriptor to the helper, so no nsenter or ip is needed and no process
// copies frames between the tap and the stack; the DNS resolver relays
// queries unchanged to configurable upstream servers (ports included); and
// with the gateway's mapping to the host's loopback turned off, the
// subnet's addresses are unreachable instead of leaking to the host's
// network.
package gvisor
