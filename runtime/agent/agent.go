// Package agent is the protocol between devbox on the host and the agent
// inside a running box (the box init, PID 1, which serves sessions).
//
// Why an agent: a Go program cannot setns(2) into a user or mount
// namespace (it is multi-threaded), and cgo is ruled out, so joining a box
// from the host would mean exec'ing nsenter(1) plus a helper chain. Instead
// the init that created the box keeps running and starts every session
// itself: a session is one fork+exec inside the box, reached through a unix
// socket in the user's runtime directory. That is fast (no namespace setup
// per session), puts every session in the box's PID namespace and
// filesystem, and lets the box stop itself when its last session leaves.
//
// Wire format: a SOCK_SEQPACKET unix socket; each message is one JSON
// object in one packet (a Request writes its own, AppendJSON). File descriptors travel with SCM_RIGHTS: the exec
// request carries the client's stdin, stdout and stderr (without a
// terminal); the "started" reply carries the pty master (with one).
//
//	client                              agent
//	Request{exec} [+ fds 0,1,2]  ──▶
//	                             ◀──  Reply{started, pid} [+ pty master]
//	Request{signal} …            ──▶
//	                             ◀──  Reply{exit, code}
//
// Closing the connection before the session exits hangs the session up
// (SIGHUP), as closing a terminal would.
//
// Who may connect: only devbox on the host. The socket lives in the
// user's runtime directory, which no box sees, and the agent also checks
// every connection's SO_PEERCRED: a process of the box itself (a pid the
// agent can see in its PID namespace) is refused, and so is any uid but
// the box owner's. Only such a host client can ask for a uid 0 session
// (shell --root, exec --root); a session runs as the owner or root only.
package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/seqpacket"
	"golang.org/x/sys/unix"
)

// Request types.
const (
	TypeExec   = "exec"
	TypeSignal = "signal"
	TypeStop   = "stop"
	TypeStatus = "status"
)

// Reply types.
const (
	TypeStarted = "started"
	TypeExit    = "exit"
	TypeError   = "error"
	TypeOK      = "ok"
)

// Request is a message from the host to the agent.
type Request struct {
	Type     string   `json:"type"`
	Args     []string `json:"args,omitempty"`
	Env      []string `json:"env,omitempty"` // the session's complete environment
	Cwd      string   `json:"cwd,omitempty"` // falls back to $HOME, then /
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Terminal bool     `json:"terminal,omitempty"`
	Rows     uint16   `json:"rows,omitempty"`
	Cols     uint16   `json:"cols,omitempty"`
	Signal   int      `json:"signal,omitempty"`
	// Reason is, for stop, what the ended sessions are told (the command
	// that stopped the box).
	Reason string `json:"reason,omitempty"`
}

// Reply is a message from the agent to the host.
type Reply struct {
	Type     string `json:"type"`
	PID      int    `json:"pid,omitempty"` // the session's pid inside the box
	Code     int    `json:"code"`
	Message  string `json:"message,omitempty"`
	Sessions int    `json:"sessions"`
	InitPID  int    `json:"initPid,omitempty"` // host pid of the init
	Started  int64  `json:"started,omitempty"` // unix seconds the box started
}

// Conn is one connection, either side: through the Go runtime's poller
// (c), or a descriptor in blocking mode (fd, when c is nil; DialBlocking).
type Conn struct {
	c  *net.UnixConn
	fd int
}

// NewConn wraps an accepted connection.
func NewConn(c *net.UnixConn) *Conn { return &Conn{c: c} }

// Dial connects to the agent socket at path and checks who listens there:
// devbox on the host made the listening socket, as the user, and the
// kernel reports a listener's maker as the peer (SO_PEERCRED). A socket of
// any other uid is closed before anything is sent to it: a request carries
// the session's argv, environment and stdio (TestEscapeAgentSocketStandIn).
func Dial(path string) (*Conn, error) {
	c, err := DialAny(path)
	if err != nil {
		return nil, err
	}
	return c.checkListener(path)
}

// DialBlocking is Dial with the connection in blocking mode: a client
// with one connection and nothing else to wait for (a session's) reads
// each reply in its own thread, woken by the kernel, not through the
// runtime's poller and another thread's wake-up, and sets no poller up.
func DialBlocking(path string) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	for {
		if err = unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "unixpacket", Addr: &net.UnixAddr{Name: path, Net: "unixpacket"},
			Err: os.NewSyscallError("connect", err)}
	}
	return (&Conn{fd: fd}).checkListener(path)
}

// checkListener closes c unless the user made the listening socket.
func (c *Conn) checkListener(path string) (*Conn, error) {
	cred, err := c.PeerCred()
	if err != nil {
		c.Close()
		return nil, err
	}
	if int(cred.Uid) != os.Geteuid() {
		c.Close()
		return nil, fmt.Errorf("%s is served by uid %d, not by devbox as you; nothing was sent to it (hint: someone else could write devbox's runtime directory: remove what listens there and check %s)",
			path, cred.Uid, filepath.Dir(filepath.Dir(path)))
	}
	return c, nil
}

// DialAny connects to the seqpacket socket at path whoever listens there
// (devbox-host in a box dials its channel to the host with it: the
// helper's uid is not the box process's).
func DialAny(path string) (*Conn, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	return &Conn{c: c}, nil
}

// PeerCred returns the credentials of the peer as the kernel recorded
// them when it connected (SO_PEERCRED), translated into the caller's
// namespaces: a pid of 0 means the peer's process is not in the caller's
// PID namespace.
func (c *Conn) PeerCred() (*unix.Ucred, error) {
	if c.c == nil {
		return unix.GetsockoptUcred(c.fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	}
	rc, err := c.c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, serr
}

// PeerPidfd returns a pidfd of the peer's process as it connected
// (SO_PEERPIDFD, Linux 6.5): while it answers, the peer's pid names that
// process and no other. A peer that is gone is an error; a kernel without
// SO_PEERPIDFD is unix.ENOPROTOOPT.
func (c *Conn) PeerPidfd() (int, error) {
	if c.c == nil {
		return unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	}
	rc, err := c.c.SyscallConn()
	if err != nil {
		return -1, err
	}
	pidfd, serr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		pidfd, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	}); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, serr
	}
	return pidfd, nil
}

// Close closes the connection. A blocking one is shut down first: that
// wakes a Receive blocked on it in another goroutine.
func (c *Conn) Close() error {
	if c.c == nil {
		_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
		return unix.Close(c.fd)
	}
	return c.c.Close()
}

// Send writes one message with optional files.
func (c *Conn) Send(v any, files ...*os.File) error {
	if c.c == nil {
		return seqpacket.SendFD(c.fd, v, files...)
	}
	return seqpacket.Send(c.c, v, files...)
}

// Receive reads one message into v and returns the files that came with it.
func (c *Conn) Receive(v any) ([]*os.File, error) {
	var p seqpacket.Packet
	var err error
	if c.c == nil {
		p, err = seqpacket.RecvFD(c.fd, 1<<20, 8)
	} else {
		p, err = seqpacket.Recv(c.c, 1<<20, 8)
	}
	if errors.Is(err, io.EOF) {
		return nil, errors.New("connection closed")
	}
	if err != nil {
		return nil, err
	}
	if err := p.Decode(v); err != nil {
		return nil, fmt.Errorf("reading agent message: %w", err)
	}
	return p.Files, nil
}

// SetDeadline bounds the next reads and writes.
// A blocking connection has none (DialBlocking's clients wait for their
// session).
func (c *Conn) SetDeadline(t time.Time) error {
	if c.c == nil {
		return errors.New("a blocking connection has no deadlines")
	}
	return c.c.SetDeadline(t)
}

// Call sends a request without files and waits for one reply.
func Call(path string, req Request, timeout time.Duration) (Reply, error) {
	var rep Reply
	c, err := Dial(path)
	if err != nil {
		return rep, err
	}
	defer c.Close()
	if timeout > 0 {
		c.SetDeadline(time.Now().Add(timeout))
	}
	if err := c.Send(req); err != nil {
		return rep, err
	}
	files, err := c.Receive(&rep)
	for _, f := range files {
		f.Close()
	}
	return rep, err
}

// IsNotRunning reports whether err from Dial means nobody serves the socket.
func IsNotRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}
