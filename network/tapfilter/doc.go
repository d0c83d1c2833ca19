// Package tapfilter keeps a box's hand-made frames away from the host's
// loopback: a classic BPF program, attached to the user-mode driver's
// end of the box's tap device (TUNATTACHFILTER), drops every frame the
// box sends to 127.0.0.0/8, 0.0.0.0/8, ::1, :: or an IPv4-mapped
// loopback address, and every frame that is not IPv4, IPv6 or ARP.
//
// The box's kernel never sends such frames on tap0; a box root with
// CAP_NET_RAW (or CAP_NET_ADMIN and route_localnet) can, and pasta and
// slirp4netns would connect them to the host's 127.0.0.1. The filter
// belongs to the open tap file of the driver, which the box cannot
// reach: it holds no descriptor of it and cannot attach a second one
// to a single-queue tap (docs/network.md, "Host loopback").
package tapfilter
