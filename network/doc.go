// Package network is the contract of devbox's user-mode networking: the
// network modes and how "slirp" picks a driver, published-port specs, the
// /etc/hosts and /etc/resolv.conf a box gets, and the messages the box init
// and the host-side network helper exchange. It is plain data and pure
// functions; the drivers run in network/host (host side) and network/child
// (inside the box), docs/network.md has the whole picture.
//
// A box with user-mode networking has its own network namespace with a tap
// device. On the host, a small devbox process (the network helper, stage
// "net") runs rootlesskit's ParentDriver of the chosen driver against the
// box init's pid, publishes ports and forwards the ports the box listens
// on. The init runs the matching ChildDriver before any command starts.
// They talk over one socketpair, passed to the init as an extra fd
// (runtime.Spec.NetFD):
//
//	init ──Hello (SCM_CREDENTIALS: the host learns the init's pid)──▶ helper
//	     ◀──Configure (driver message, port-driver opaque)────────────
//	     ──Ready (device; the tap fd by SCM_RIGHTS for gvisor)───────▶
//	     ◀──Go, or Abort when the host side failed──────────────────
//
// An early start (the gvisor driver without published or forwarded ports:
// every devbox run without -p) has nothing to learn from the helper: the
// init sends Hello (Early) and, having created the tap with its filter and
// configured the interface itself, Ready at once, and runs its command
// without waiting; the helper's stack attaches to the tap whenever the
// helper has started, and what the box sends before waits in the tap's
// queue.
//
// The init holds its end for its whole life: the helper sees EOF when the
// box is gone and takes everything down with it.
package network
