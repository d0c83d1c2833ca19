package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devbox-dev/devbox/internal/seqpacket"
)

// Message types of the handshake, in order (see the package comment).
const (
	MsgHello     = "hello"     // init → helper, with the init's credentials; Early
	MsgConfigure = "configure" // helper → init: Driver, Net, PortOpaque (not when Early)
	MsgReady     = "ready"     // init → helper: Dev; the tap fd for gvisor
	MsgGo        = "go"        // helper → init: start the command (not when Early)
	MsgAbort     = "abort"     // either way: Error, then the sender gives up
)

// Names of the descriptors Ready carries.
const (
	FileTap  = "tap"  // the box's tap device (gvisor driver)
	FileDiag = "diag" // a NETLINK_SOCK_DIAG socket in the box's network namespace
)

// WireVersion is bumped when Message changes incompatibly; Hello carries
// it so an init and a helper of different builds fail clearly.
const WireVersion = 2

// Message is one handshake message: a JSON value in one SOCK_SEQPACKET
// packet, with descriptors attached when a type says so.
type Message struct {
	Type    string `json:"type"`
	Version int    `json:"version,omitempty"` // Hello
	// Early (Hello): the box set its network up itself — the gvisor
	// driver's fixed configuration (GvisorConfig), no ports — and sends
	// Ready at once; it waits for neither Configure nor Go, and the
	// helper sends neither.
	Early bool `json:"early,omitempty"`
	// Configure.
	Driver     string            `json:"driver,omitempty"`
	Net        *DriverConfig     `json:"net,omitempty"`
	PortOpaque map[string]string `json:"portOpaque,omitempty"`
	// Listeners asks the init for a sock_diag socket in the box's network
	// namespace, which the helper polls for listening ports.
	Listeners bool `json:"listeners,omitempty"`
	// Ready: the box's interface, and what the attached descriptors are
	// (FileTap, FileDiag), in order.
	Dev   string   `json:"dev,omitempty"`
	Files []string `json:"files,omitempty"`
	// Abort.
	Error string `json:"error,omitempty"`
}

// DriverConfig is rootlesskit's ParentInitNetworkDriverCompleted without
// its in-process Network object: what the parent driver tells the child.
type DriverConfig struct {
	Dev     string            `json:"dev"`
	IP      string            `json:"ip"`
	Netmask int               `json:"netmask"`
	Gateway string            `json:"gateway"`
	DNS     []string          `json:"dns,omitempty"`
	MTU     int               `json:"mtu"`
	Opaque  map[string]string `json:"opaque,omitempty"`
}

// Conn is one end of the handshake socketpair.
type Conn struct {
	c *net.UnixConn
}

// NewPair returns a connected pair: the helper's end, which receives the
// credentials of the other's sender, and the end for the init.
func NewPair() (helper, init *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the network handshake socket: %w", err)
	}
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("creating the network handshake socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "net-helper"), os.NewFile(uintptr(fds[1]), "net-init"), nil
}

// FileConn makes a Conn of an end of NewPair. f is closed (the Conn has
// its own descriptor).
func FileConn(f *os.File) (*Conn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("network handshake socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("network handshake socket: not a unix socket")
	}
	return &Conn{c: uc}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// SetDeadline bounds the following Send and Recv calls (zero: none).
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// PeerGone reports whether the other end has closed (what it sent before
// may still be unread).
func (c *Conn) PeerGone() bool {
	rc, err := c.c.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(p, 0)
		gone = err == nil && n > 0 && p[0].Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0
	})
	return gone
}

// Send sends m with files attached.
func (c *Conn) Send(m Message, files ...*os.File) error {
	if err := seqpacket.Send(c.c, m, files...); err != nil {
		return fmt.Errorf("network handshake: sending %s: %w", m.Type, err)
	}
	return nil
}

// maxFiles bounds the descriptors one message may carry.
const maxFiles = 4

// Received is a message with what came with it.
type Received struct {
	Message
	Files []*os.File
	// PID is the sender's pid in the receiver's PID namespace, when the
	// receiving end passes credentials (the helper's end of NewPair); 0
	// otherwise.
	PID int
}

// ErrClosed is returned by Recv when the other end is gone.
var ErrClosed = errors.New("network handshake: the other end closed")

// Recv receives one message.
func (c *Conn) Recv() (Received, error) {
	p, err := seqpacket.Recv(c.c, 64<<10, maxFiles)
	if errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET) {
		return Received{}, ErrClosed
	}
	if err != nil {
		return Received{}, fmt.Errorf("network handshake: %w", err)
	}
	r := Received{Files: p.Files, PID: p.PID}
	if err := p.Decode(&r.Message); err != nil {
		return Received{}, fmt.Errorf("network handshake: malformed message: %w", err)
	}
	return r, nil
}
