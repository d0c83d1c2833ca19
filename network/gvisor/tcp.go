package gvisor

import (
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// relayBuffer is the copy size between the box's connection and the
// host's: large enough that one write fills a segment of the 64 KiB MTU
// (io.Copy's 32 KiB would halve every segment the stack sends the box).
const relayBuffer = 256 << 10

// maxPendingSYN bounds the box's connections being dialled on the host.
const maxPendingSYN = 256

// tcpForwarder turns each TCP connection the box opens into a connection
// of the helper to the same address and port (the gateway mapped by nat),
// and relays both ways. A destination that refuses or cannot be reached
// gets a reset.
func tcpForwarder(s *stack.Stack, nat map[tcpip.Address]tcpip.Address) *tcp.Forwarder {
	return tcp.NewForwarder(s, 0, maxPendingSYN, func(r *tcp.ForwarderRequest) {
		id := r.ID()
		dst := id.LocalAddress
		if m, ok := nat[dst]; ok {
			dst = m
		}
		out, err := net.DialTimeout("tcp", net.JoinHostPort(dst.String(), strconv.Itoa(int(id.LocalPort))), 30*time.Second)
		if err != nil {
			r.Complete(true)
			return
		}
		var wq waiter.Queue
		ep, terr := r.CreateEndpoint(&wq)
		r.Complete(false)
		if terr != nil {
			out.Close()
			return
		}
		ep.SocketOptions().SetKeepAlive(true)
		go relay(gonet.NewTCPConn(&wq, ep), out.(*net.TCPConn))
	})
}

type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// relay copies both ways, passing on each direction's end (half-close),
// and closes both connections when both directions ended.
func relay(box *gonet.TCPConn, host *net.TCPConn) {
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst halfCloser, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, relayBuffer)
		// Hide ReaderFrom/WriterTo so that the buffer is used.
		_, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
		_ = dst.CloseWrite()
	}
	go pipe(host, box)
	go pipe(box, host)
	wg.Wait()
	box.Close()
	host.Close()
}
