// Package host is the host side of devbox's user-mode networking, as the
// CLI sees it: starting the network helper (Start), the descriptors and
// status lines it is started with, and ports.json. The helper itself, a
// process (stage "net", the embedded devbox-net program, package
// network/host/helper) in the host's namespaces, lives exactly as long as
// one box. It runs the rootlesskit ParentDriver of the box's driver
// against the box init's host pid, publishes the box's ports with rootlesskit's builtin port driver,
// forwards the TCP ports a process in the box listens on, and writes what
// is forwarded to ports.json for devbox ports and devbox inspect.
//
// The helper is started by the CLI (Start) before the box, with one end of
// the handshake socketpair; the box init gets the other. It exits when the
// init's end closes, that is when the box is gone, whatever killed it, and
// takes every driver process and forwarded port with it. Killing the CLI
// kills the box (its helpers die with their parent), so the helper
// follows.
package host
