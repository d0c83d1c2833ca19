package child

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The box side of rootlesskit's builtin port driver, whose host side runs
// in the network helper. It is written here rather than linked because
// rootlesskit's port package brings net/http and crypto/tls into the box
// init: 1.4 MB and about 0.4 ms of every box start.
//
// The driver's contract: the host side opens the readiness FIFO for
// reading; the box side opens it for writing, listens on the unix socket
// and closes the FIFO. Each connection carries one request, a
// little-endian uint32 length and a JSON object; "init" is answered with
// an empty reply in the same framing; "connect" is answered with the
// descriptor of a connection dialled inside the box, as SCM_RIGHTS on a
// short message; a failure with a reply whose Error says why. (The source
// IP preservation rootlesskit offers is not used by devbox.)
const (
	portSocketOpaque = "builtin.socketpath"
	portReadyOpaque  = "builtin.readypipepath"
	maxPortMessage   = 1 << 16
)

type portRequest struct {
	Type          string // "init" or "connect"
	Proto         string // tcp, tcp4, tcp6, udp, udp4, udp6
	IP            string
	Port          int
	ParentIP      string
	HostGatewayIP string
}

type portReply struct {
	Error string
}

// servePorts runs the box side of the port driver until the listener
// fails; ready is closed once it listens.
func servePorts(opaque map[string]string, ready chan<- struct{}) error {
	socket, fifo := opaque[portSocketOpaque], opaque[portReadyOpaque]
	if socket == "" || fifo == "" {
		return errors.New("the helper sent no port driver socket or readiness pipe")
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		l.Close()
		return err
	}
	close(ready)
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			if err := servePortConn(c); err != nil {
				_ = writePortMessage(c, portReply{Error: err.Error()})
			}
		}()
	}
}

func servePortConn(c *net.UnixConn) error {
	var req portRequest
	if err := readPortMessage(c, &req); err != nil {
		return err
	}
	switch req.Type {
	case "init":
		return writePortMessage(c, portReply{})
	case "connect":
		conn, err := dialPort(req)
		if err != nil {
			return err
		}
		defer conn.Close()
		f, err := conn.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			return err
		}
		defer f.Close()
		_, _, err = c.WriteMsgUnix([]byte("dummy"), unix.UnixRights(int(f.Fd())), nil)
		return err
	}
	return fmt.Errorf("unknown request type %q", req.Type)
}

// dialPort connects to the box's end of a published port: the IP asked
// for, else the host address the port was published on when that is a
// specific one (not the gateway or the wildcard), else 127.0.0.1.
func dialPort(req portRequest) (net.Conn, error) {
	switch req.Proto {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("unknown proto: %q", req.Proto)
	}
	ip := "127.0.0.1"
	if req.IP != "" {
		p := net.ParseIP(req.IP)
		if p == nil {
			return nil, fmt.Errorf("invalid IP: %q", req.IP)
		}
		ip = p.String()
	} else if req.ParentIP != "" && req.ParentIP != req.HostGatewayIP && req.ParentIP != "0.0.0.0" {
		ip = req.ParentIP
	}
	return net.Dial(strings.TrimRight(req.Proto, "46"), net.JoinHostPort(ip, strconv.Itoa(req.Port)))
}

func readPortMessage(r io.Reader, v any) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(h[:])
	if n < 1 || n > maxPortMessage {
		return fmt.Errorf("bad message length %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writePortMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := binary.LittleEndian.AppendUint32(nil, uint32(len(b)))
	_, err = w.Write(append(h, b...))
	return err
}
