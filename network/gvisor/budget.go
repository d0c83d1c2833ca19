package gvisor

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// The helper's memory for relaying the box's TCP connections is bounded by
// a budget that every forwarded connection draws from for as long as it
// lives. What a connection can hold at most is what it is charged:
//
//   - its gVisor receive buffer (data the box sent that the host peer has
//     not taken yet),
//   - its gVisor send buffer (data of the host peer the box has not read),
//   - the two copy buffers between the gVisor endpoint and the host socket.
//
// A connection gets a fast tier (buffers for a full-speed transfer) while
// the fast share of the budget lasts, else a small tier; when neither fits,
// or maxTCPConns connections are open, the box's connection is refused
// with a reset. A host peer that does not read fills the connection's
// buffers and then closes the box's receive window: the box waits
// (backpressure), the helper does not buffer more.
const (
	// tcpBudget is what all forwarded connections together may be charged.
	tcpBudget = 40 << 20
	// fastShare is the part of tcpBudget fast connections may use; the
	// rest stays for small ones.
	fastShare = 24 << 20
	// maxTCPConns caps the connections forwarded at once.
	maxTCPConns = 1024

	// The stack's maxima: a fast connection's buffers are auto-tuned up
	// to them.
	fastRcv  = 4 << 20
	fastSnd  = 2 << 20
	fastCopy = 256 << 10 // fills a segment of the 64 KiB MTU (see relay)

	smallRcv  = 8 << 10
	smallSnd  = 8 << 10
	smallCopy = 8 << 10
)

// tier is what one connection may use.
type tier struct {
	fast     bool
	rcv, snd int // gVisor buffer sizes; 0: the stack's (auto-tuned)
	copyBuf  int // each of the two copy buffers
}

func (t tier) cost() int64 {
	rcv, snd := t.rcv, t.snd
	if rcv == 0 {
		rcv = fastRcv
	}
	if snd == 0 {
		snd = fastSnd
	}
	return int64(rcv + snd + 2*t.copyBuf)
}

var (
	fastTier  = tier{fast: true, copyBuf: fastCopy}
	smallTier = tier{rcv: smallRcv, snd: smallSnd, copyBuf: smallCopy}
)

// budget hands out tiers. The zero value is not usable: see newBudget.
type budget struct {
	total, fastMax int64
	maxConns       int
	log            io.Writer
	now            func() time.Time

	mu          sync.Mutex
	used, fastN int64
	conns       int
	refused     int       // refused since the last log line
	lastLog     time.Time // when the cap was last logged
	atCapLogged bool
}

func newBudget(total, fastMax int64, maxConns int, log io.Writer) *budget {
	return &budget{total: total, fastMax: fastMax, maxConns: maxConns, log: log, now: time.Now}
}

// take returns the tier of a new connection, or false when it must be
// refused.
func (b *budget) take() (tier, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns < b.maxConns {
		for _, t := range []tier{fastTier, smallTier} {
			c := t.cost()
			if t.fast && b.fastN+c > b.fastMax {
				continue
			}
			if b.used+c > b.total {
				continue
			}
			b.used += c
			if t.fast {
				b.fastN += c
			}
			b.conns++
			b.atCapLogged = false
			return t, true
		}
	}
	b.refused++
	// One line when the cap is reached, then at most one every 10 s
	// while connections are being refused.
	if now := b.now(); !b.atCapLogged || now.Sub(b.lastLog) >= 10*time.Second {
		fmt.Fprintf(b.log, "devbox: network helper: the box has %d TCP connections forwarded to the host (using %d of %d MiB of relay buffers), the cap: refusing new ones with a reset (%d refused) until some close\n",
			b.conns, b.used>>20, b.total>>20, b.refused)
		b.atCapLogged, b.lastLog, b.refused = true, now, 0
	}
	return tier{}, false
}

// give returns what take handed out.
func (b *budget) give(t tier) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := t.cost()
	b.used -= c
	if t.fast {
		b.fastN -= c
	}
	b.conns--
}
