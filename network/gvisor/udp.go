package gvisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The box's UDP flows (one per box address and port, destination address
// and port) each become a connected UDP socket of the helper on the host.
// At most maxUDPFlows exist at once: a flow idle for udpIdle is closed,
// and a new flow over the cap closes the one idle the longest. A closed
// flow's next datagram opens it again (from another host port).
const (
	maxUDPFlows = 512
	udpIdle     = 30 * time.Second
	// udpBuf holds the largest datagram; buffers are taken from a pool
	// only while a datagram is being copied, so an idle flow holds none.
	udpBuf = 64 << 10
)

var udpPool = sync.Pool{New: func() any { b := make([]byte, udpBuf); return &b }} //nolint:gochecknoglobals

// udpFlows is the table of open flows.
type udpFlows struct {
	s    *stack.Stack
	nat  map[tcpip.Address]tcpip.Address
	max  int
	idle time.Duration
	log  io.Writer
	now  func() time.Time

	mu      sync.Mutex
	flows   map[*udpFlow]struct{}
	lastLog time.Time
	evicted int
	closed  bool
	stop    chan struct{}
}

type udpFlow struct {
	ep   tcpip.Endpoint
	wq   *waiter.Queue
	host *net.UDPConn
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	last time.Time // last datagram either way
}

func newUDPFlows(s *stack.Stack, nat map[tcpip.Address]tcpip.Address, log io.Writer) *udpFlows {
	f := &udpFlows{s: s, nat: nat, max: maxUDPFlows, idle: udpIdle, log: log, now: time.Now,
		flows: map[*udpFlow]struct{}{}, stop: make(chan struct{})}
	go f.expire()
	return f
}

// forwarder returns the stack's handler of new flows.
func (f *udpFlows) forwarder() *udp.Forwarder {
	return udp.NewForwarder(f.s, f.open)
}

func (f *udpFlows) open(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := id.LocalAddress
	if m, ok := f.nat[dst]; ok {
		dst = m
	}
	host, err := net.Dial("udp", net.JoinHostPort(dst.String(), strconv.Itoa(int(id.LocalPort))))
	if err != nil {
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		host.Close()
		return
	}
	fl := &udpFlow{ep: ep, wq: &wq, host: host.(*net.UDPConn), done: make(chan struct{}), last: f.now()}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		fl.close()
		return
	}
	if len(f.flows) >= f.max {
		f.evictOldestLocked()
	}
	f.flows[fl] = struct{}{}
	f.mu.Unlock()
	go f.boxToHost(fl)
	go f.hostToBox(fl)
}

// evictOldestLocked closes the flow idle the longest.
func (f *udpFlows) evictOldestLocked() {
	var old *udpFlow
	var oldT time.Time
	for fl := range f.flows {
		if t := fl.lastUse(); old == nil || t.Before(oldT) {
			old, oldT = fl, t
		}
	}
	if old == nil {
		return
	}
	delete(f.flows, old)
	old.close()
	f.evicted++
	if now := f.now(); now.Sub(f.lastLog) >= 10*time.Second {
		fmt.Fprintf(f.log, "devbox: network helper: the box has %d UDP flows open, the cap: closing the oldest for each new one (%d closed)\n", f.max, f.evicted)
		f.lastLog, f.evicted = now, 0
	}
}

// expire closes idle flows.
func (f *udpFlows) expire() {
	t := time.NewTicker(f.idle / 6)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		f.expireNow()
	}
}

func (f *udpFlows) expireNow() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for fl := range f.flows {
		if now.Sub(fl.lastUse()) >= f.idle {
			delete(f.flows, fl)
			fl.close()
		}
	}
}

func (f *udpFlows) remove(fl *udpFlow) {
	f.mu.Lock()
	delete(f.flows, fl)
	f.mu.Unlock()
	fl.close()
}

// close closes every flow.
func (f *udpFlows) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	close(f.stop)
	for fl := range f.flows {
		fl.close()
	}
	f.flows = nil
}

func (fl *udpFlow) lastUse() time.Time {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.last
}

func (fl *udpFlow) touch(t time.Time) {
	fl.mu.Lock()
	fl.last = t
	fl.mu.Unlock()
}

func (fl *udpFlow) close() {
	fl.once.Do(func() {
		close(fl.done)
		fl.host.Close()
		fl.ep.Close()
	})
}

// boxToHost sends the box's datagrams to the host peer.
func (f *udpFlows) boxToHost(fl *udpFlow) {
	defer f.remove(fl)
	we, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	fl.wq.EventRegister(&we)
	defer fl.wq.EventUnregister(&we)
	for {
		bp := udpPool.Get().(*[]byte)
		w := tcpip.SliceWriter(*bp)
		res, terr := fl.ep.Read(&w, tcpip.ReadOptions{})
		if _, wait := terr.(*tcpip.ErrWouldBlock); wait {
			udpPool.Put(bp)
			select {
			case <-ch:
				continue
			case <-fl.done:
				return
			}
		}
		if terr != nil && res.Count == 0 {
			udpPool.Put(bp)
			return
		}
		_, err := fl.host.Write((*bp)[:res.Count])
		udpPool.Put(bp)
		fl.touch(f.now())
		if err != nil && !errors.Is(err, unix.ECONNREFUSED) {
			return
		}
	}
}

// hostToBox sends the host peer's datagrams to the box. It waits for
// one with no buffer, and takes one from the pool to read it.
func (f *udpFlows) hostToBox(fl *udpFlow) {
	defer f.remove(fl)
	rc, err := fl.host.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		var rerr error
		var bp *[]byte
		err := rc.Read(func(fd uintptr) bool {
			bp = udpPool.Get().(*[]byte)
			n, rerr = unix.Read(int(fd), *bp)
			if rerr == unix.EAGAIN {
				udpPool.Put(bp)
				bp = nil
				return false
			}
			return true
		})
		if err != nil {
			if bp != nil {
				udpPool.Put(bp)
			}
			return
		}
		if rerr != nil {
			udpPool.Put(bp)
			if rerr == unix.ECONNREFUSED { // an earlier datagram's ICMP error
				continue
			}
			return
		}
		_, terr := fl.ep.Write(bytes.NewReader((*bp)[:n]), tcpip.WriteOptions{})
		udpPool.Put(bp)
		fl.touch(f.now())
		if terr != nil {
			if _, full := terr.(*tcpip.ErrWouldBlock); !full {
				return
			}
		}
	}
}
