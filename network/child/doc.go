// Package child is the box init's side of user-mode networking: the
// handshake with the network helper on the host (package network documents
// the messages), the driver's ChildDriver, the interface configuration that
// rootlesskit's child does with ip(8), and the box side of rootlesskit's
// builtin port driver (our own, compatible with rootlesskit's host side),
// which dials inside the box for connections to published and forwarded
// ports.
//
// It runs in the init before pivot_root: the drivers use host paths then
// (the tun device, the port driver's socket in the helper's state
// directory, and for slirp4netns the host's ip(8), which the helper runs in
// the init's mount namespace with nsenter). After the pivot only open
// descriptors are used.
package child
