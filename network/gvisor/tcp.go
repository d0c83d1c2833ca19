package gvisor

import (
	"io"
	"net"
	"strconv"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// maxPendingSYN bounds the box's connections being dialled on the host.
const maxPendingSYN = 256

// tcpForwarder turns each TCP connection the box opens into a connection
// of the helper to the same address and port (the gateway mapped by nat),
// and relays both ways within what b grants (budget.go). A destination
// that refuses or cannot be reached gets a reset, and so does a connection
// over the budget.
func tcpForwarder(s *stack.Stack, nat map[tcpip.Address]tcpip.Address, b *budget) *tcp.Forwarder {
	return tcp.NewForwarder(s, 0, maxPendingSYN, func(r *tcp.ForwarderRequest) {
		t, ok := b.take()
		if !ok {
			r.Complete(true)
			return
		}
		id := r.ID()
		dst := id.LocalAddress
		if m, ok := nat[dst]; ok {
			dst = m
		}
		out, err := net.DialTimeout("tcp", net.JoinHostPort(dst.String(), strconv.Itoa(int(id.LocalPort))), 30*time.Second)
		if err != nil {
			b.give(t)
			r.Complete(true)
			return
		}
		var wq waiter.Queue
		ep, terr := r.CreateEndpoint(&wq)
		r.Complete(false)
		if terr != nil {
			b.give(t)
			out.Close()
			return
		}
		host := out.(*net.TCPConn)
		so := ep.SocketOptions()
		if t.rcv > 0 {
			so.SetReceiveBufferSize(int64(t.rcv), true)
		}
		if t.snd > 0 {
			so.SetSendBufferSize(int64(t.snd), true)
		}
		if !t.fast {
			// The host's kernel buffers are not the helper's memory, but
			// a small connection has no use for megabytes of them either.
			_ = host.SetReadBuffer(t.copyBuf * 8)
			_ = host.SetWriteBuffer(t.copyBuf * 8)
		}
		// A box that vanishes without a reset (its socket orphaned behind
		// a closed window) is found by keepalive within about two minutes.
		so.SetKeepAlive(true)
		idle, intvl := tcpip.KeepaliveIdleOption(60*time.Second), tcpip.KeepaliveIntervalOption(15*time.Second)
		_ = ep.SetSockOpt(&idle)
		_ = ep.SetSockOpt(&intvl)
		_ = ep.SetSockOptInt(tcpip.KeepaliveCountOption, 4)
		// A reset from the box ends the relay even when both copies are
		// blocked on the host peer (which does not read, and sends
		// nothing).
		hup, hupCh := waiter.NewChannelEntry(waiter.EventHUp | waiter.EventErr)
		wq.EventRegister(&hup)
		go func() {
			relay(gonet.NewTCPConn(&wq, ep), host, t.copyBuf, hupCh)
			wq.EventUnregister(&hup)
			b.give(t)
		}()
	})
}

type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// relay copies both ways with buffers of size bufSize, passing on each
// direction's end (half-close), and closes both connections when both
// directions ended, or at once when the box's endpoint fails (hup). A fast connection's buffer is large enough that one
// write fills a segment of the 64 KiB MTU (io.Copy's 32 KiB would halve
// every segment the stack sends the box).
func relay(box *gonet.TCPConn, host *net.TCPConn, bufSize int, hup <-chan struct{}) {
	ended := make(chan struct{}, 2)
	pipe := func(dst halfCloser, src net.Conn) {
		buf := make([]byte, bufSize)
		// Hide ReaderFrom/WriterTo so that the buffer is used.
		_, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
		_ = dst.CloseWrite()
		ended <- struct{}{}
	}
	go pipe(host, box)
	go pipe(box, host)
	for n := 0; n < 2; {
		select {
		case <-ended:
			n++
		case <-hup:
			hup = nil
			host.Close()
			box.Close()
		}
	}
	box.Close()
	host.Close()
}
