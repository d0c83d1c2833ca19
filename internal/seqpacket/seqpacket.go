// Package seqpacket carries JSON values over a SOCK_SEQPACKET unix socket,
// one value per packet, with file descriptors attached (SCM_RIGHTS) and,
// where the receiving socket asks for them (SO_PASSCRED), the sender's
// credentials. The box agent's protocol (runtime/agent) and the network
// handshake (package network) are built on it; each adds its own message
// types and error wording.
package seqpacket

import (
	"encoding/json"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Send writes v as one packet, with files attached.
func Send(c *net.UnixConn, v any, files ...*os.File) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	_, _, err = c.WriteMsgUnix(b, oob, nil)
	return err
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
	if err := json.Unmarshal(p.Data, v); err != nil {
		p.Close()
		return err
	}
	return nil
}

// Recv reads one packet of at most bufSize bytes carrying at most maxFiles
// descriptors. An empty packet is the end of the stream: io.EOF.
func Recv(c *net.UnixConn, bufSize, maxFiles int) (Packet, error) {
	buf := make([]byte, bufSize)
	oob := make([]byte, unix.CmsgSpace(maxFiles*4)+unix.CmsgSpace(unix.SizeofUcred))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return Packet{}, err
	}
	p := Packet{Data: buf[:n]}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
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
	if n == 0 {
		p.Close()
		return Packet{}, io.EOF
	}
	return p, nil
}
