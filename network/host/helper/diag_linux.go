package helper

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Listeners of the box, asked of the kernel with sock_diag (inet_diag).
//
// /proc/PID/net/tcp lists a network namespace's sockets by walking the
// whole established-connection hash table, which the namespaces share:
// about 7 ms of CPU per read on our reference machine, 1.5 % of a core at
// two polls a second. An inet_diag dump restricted to listening sockets
// walks only the listening table. The netlink socket is created by the
// box init inside the box's network namespace (a socket's namespace is
// fixed when it is made) and handed to the helper, so the helper asks
// about the box's sockets from the host.

const (
	sizeofInetDiagReqV2 = 56
	sizeofInetDiagMsg   = 72
	tcpListenState      = 10 // TCP_LISTEN
)

// diagListeners returns the listening TCP sockets of the network
// namespace of the NETLINK_SOCK_DIAG socket f.
func diagListeners(f *os.File) ([]Listener, error) {
	fd := int(f.Fd())
	var out []Listener
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		ls, err := diagDump(fd, fam)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

// diagRequest is an inet_diag_req_v2 dump request for family's listening
// TCP sockets.
func diagRequest(family uint8, seq uint32) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+sizeofInetDiagReqV2)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(b[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	req := b[unix.SizeofNlMsghdr:]
	req[0] = family
	req[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(req[4:8], 1<<tcpListenState)
	return b
}

var diagSeq uint32

func diagDump(fd int, family uint8) ([]Listener, error) {
	diagSeq++
	seq := diagSeq
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	if err := unix.Sendto(fd, diagRequest(family, seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	buf := make([]byte, 32<<10)
	var out []Listener
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sock_diag: %w", err)
		}
		ls, done, err := parseDiag(buf[:n], seq)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
		if done {
			return out, nil
		}
	}
	return nil, errors.New("sock_diag: no end of dump")
}

// parseDiag reads one datagram of a dump: the listeners in it, and
// whether the dump ended.
func parseDiag(b []byte, seq uint32) ([]Listener, bool, error) {
	var out []Listener
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		s := binary.NativeEndian.Uint32(b[8:12])
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return nil, false, errors.New("sock_diag: malformed reply")
		}
		data := b[unix.SizeofNlMsghdr:l]
		b = b[(l+3)&^3:]
		if s != seq {
			continue // a late reply to an earlier dump
		}
		switch typ {
		case unix.NLMSG_DONE:
			return out, true, nil
		case unix.NLMSG_ERROR:
			if len(data) >= 4 {
				if code := int32(binary.NativeEndian.Uint32(data[0:4])); code != 0 {
					return nil, false, fmt.Errorf("sock_diag: %w", unix.Errno(-code))
				}
			}
			return out, true, nil
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(data) < sizeofInetDiagMsg || data[1] != tcpListenState {
				continue
			}
			port := int(binary.BigEndian.Uint16(data[4:6]))
			var a netip.Addr
			switch data[0] {
			case unix.AF_INET:
				a = netip.AddrFrom4([4]byte(data[8:12]))
			case unix.AF_INET6:
				a = netip.AddrFrom16([16]byte(data[8:24])).Unmap()
			default:
				continue
			}
			out = append(out, Listener{Addr: a, Port: port})
		}
	}
	return out, false, nil
}
