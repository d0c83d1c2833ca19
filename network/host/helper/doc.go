// Package helper is the network helper's body (stage "net"; package
// network/host describes it): it runs the driver's host side, publishes and
// forwards the box's ports, and exits when the box is gone. cmd/devbox-net
// is it as a program of its own, which devbox embeds (internal/libexec), so
// that gVisor's network stack stays out of the CLI.
package helper
