// Package seqpacket carries JSON values over a SOCK_SEQPACKET unix socket,
// one value per packet, with file descriptors attached (SCM_RIGHTS) and,
// where the receiving socket asks for them (SO_PASSCRED), the sender's
// credentials. The box agent's protocol (runtime/agent) and the network
// handshake (package network) are built on it; each adds its own message
// types and error wording.
package seqpacket

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// JSONAppender is a value that writes its own JSON encoding: the same
// object encoding/json makes of it, without the reflection, whose first
// use cost a short-lived sender (devbox's front sends one request per
// process) about 0.3 ms.
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// QuickDecoder is a value that reads the common forms of its JSON
// encoding itself, without the reflection (whose first use costs a
// short-lived receiver 0.05–0.1 ms per type), to exactly what
// encoding/json would make of them; it reports false, having changed
// nothing, for any other input, which encoding/json then reads.
type QuickDecoder interface {
	QuickDecode(data []byte) bool
}

// Send writes v as one packet, with files attached.
func Send(c *net.UnixConn, v any, files ...*os.File) error {
	b, oob, err := message(v, files)
	if err != nil {
		return err
	}
	_, _, err = c.WriteMsgUnix(b, oob, nil)
	return err
}

// SendFD is Send on the socket descriptor fd, in blocking mode (no Go
// runtime poller: a short-lived client's one connection).
func SendFD(fd int, v any, files ...*os.File) error {
	b, oob, err := message(v, files)
	if err != nil {
		return err
	}
	for {
		if err = unix.Sendmsg(fd, b, oob, nil, 0); err != unix.EINTR {
			return err
		}
	}
}

// message is v's packet and the control message carrying files.
func message(v any, files []*os.File) (b, oob []byte, err error) {
	if a, ok := v.(JSONAppender); ok {
		b = a.AppendJSON(make([]byte, 0, 1024))
	} else if b, err = json.Marshal(v); err != nil {
		return nil, nil, err
	}
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	return b, oob, nil
}

// Packet is one received packet.
type Packet struct {
	Data  []byte
	Files []*os.File // close-on-exec
	// PID is the sender's pid in the receiver's PID namespace when the
	// packet carried credentials, else 0.
	PID int
}

// Close closes the packet's files.
func (p Packet) Close() {
	for _, f := range p.Files {
		f.Close()
	}
}

// Decode unmarshals the packet's data into v; when that fails, the files
// are closed.
func (p Packet) Decode(v any) error {
	if d, ok := v.(QuickDecoder); ok && d.QuickDecode(p.Data) {
		return nil
	}
	if err := json.Unmarshal(p.Data, v); err != nil {
		p.Close()
		return err
	}
	return nil
}

// ErrTooLarge is a packet longer than the receiver accepts; it was read
// and dropped, with any descriptors it carried.
var ErrTooLarge = errors.New("packet too large")

// Recv reads one packet of at most bufSize bytes carrying at most maxFiles
// descriptors. An empty packet is the end of the stream: io.EOF.
//
// The packet's length is peeked first and only that much is allocated: a
// buffer of bufSize for every message (a megabyte for the box agent's)
// cost every session in a box a megabyte zeroed and faulted in, on both
// sides, and a garbage collection now and then.
func Recv(c *net.UnixConn, bufSize, maxFiles int) (Packet, error) {
	size, err := peekSize(c)
	if err != nil {
		return Packet{}, err
	}
	buf, oob := buffers(size, bufSize, maxFiles)
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return Packet{}, err
	}
	return packet(buf, n, oob[:oobn], bufSize)
}

// RecvFD is Recv on the socket descriptor fd, in blocking mode (SendFD).
func RecvFD(fd int, bufSize, maxFiles int) (Packet, error) {
	var size int
	var err error
	for {
		if size, _, err = unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return Packet{}, err
	}
	buf, oob := buffers(size, bufSize, maxFiles)
	var n, oobn int
	for {
		if n, oobn, _, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return Packet{}, err
	}
	return packet(buf, n, oob[:oobn], bufSize)
}

// buffers are a packet's of size bytes (one more than bufSize: too
// large) and its control data's.
func buffers(size, bufSize, maxFiles int) (buf, oob []byte) {
	return make([]byte, min(size, bufSize+1)), make([]byte, unix.CmsgSpace(maxFiles*4)+unix.CmsgSpace(unix.SizeofUcred))
}

// packet is the received packet of n bytes in buf with control data oob.
func packet(buf []byte, n int, oob []byte, bufSize int) (Packet, error) {
	p := Packet{Data: buf[:n]}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return Packet{}, err
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_RIGHTS:
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				p.Close()
				return Packet{}, err
			}
			for _, fd := range fds {
				unix.CloseOnExec(fd)
				p.Files = append(p.Files, os.NewFile(uintptr(fd), "received"))
			}
		case unix.SCM_CREDENTIALS:
			if cred, err := unix.ParseUnixCredentials(&m); err == nil {
				p.PID = int(cred.Pid)
			}
		}
	}
	if n > bufSize {
		p.Close()
		return Packet{}, ErrTooLarge
	}
	if n == 0 {
		p.Close()
		return Packet{}, io.EOF
	}
	return p, nil
}

// peekSize waits for the next packet and returns its length without
// reading it (MSG_PEEK|MSG_TRUNC; no control data is taken, so no
// descriptor is received twice). 0 is an empty packet or the peer's close.
func peekSize(c *net.UnixConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}
