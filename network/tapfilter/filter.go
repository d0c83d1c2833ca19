package tapfilter

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Offsets in an Ethernet frame (a tap without packet information or
// virtio-net header, as every driver opens it).
const (
	offType = 12      // EtherType
	offDst4 = 14 + 16 // IPv4 destination
	offDst6 = 14 + 24 // IPv6 destination, 16 bytes
)

// Return values: the bytes of the frame to keep.
const (
	keepAll = 0x40000
	dropIt  = 0
)

const (
	ldh = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
	ldb = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
	ldw = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	rsh = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K
	and = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	ldi = unix.BPF_LD | unix.BPF_IMM // a no-op where a label stands
	ret = unix.BPF_RET | unix.BPF_K
)

// op is one instruction with symbolic jump targets ("" = the next one).
type op struct {
	label  string
	code   uint16
	k      uint32
	jt, jf string
}

// base is the filter in symbolic form; ops for the prefixes dropped on
// request are inserted at "v4" and "v6".
var base = []op{
	{code: ldh, k: offType},
	{code: jeq, k: unix.ETH_P_IP, jt: "v4"},
	{code: jeq, k: unix.ETH_P_ARP, jt: "accept"},
	{code: jeq, k: unix.ETH_P_IPV6, jf: "drop"},
	{label: "v6"},
	// IPv6: ::, ::1, ::/96 compatible and ::ffff:0:0/96 mapped forms of
	// 0.0.0.0/8 and 127.0.0.0/8 (what a dual-stack socket would reach the
	// host's loopback with).
	{code: ldw, k: offDst6},
	{code: jeq, k: 0, jf: "accept"},
	{code: ldw, k: offDst6 + 4},
	{code: jeq, k: 0, jf: "accept"},
	{code: ldw, k: offDst6 + 8},
	{code: jeq, k: 0, jt: "last"},
	{code: jeq, k: 0xffff, jf: "accept"},
	{label: "last", code: ldw, k: offDst6 + 12},
	{code: rsh, k: 24},
	{code: jeq, k: 127, jt: "drop"},
	{code: jeq, k: 0, jt: "drop", jf: "accept"},
	// IPv4: 127.0.0.0/8 and 0.0.0.0/8.
	{label: "v4"},
	{code: ldb, k: offDst4},
	{code: jeq, k: 127, jt: "drop"},
	{code: jeq, k: 0, jt: "drop"},
	{label: "accept", code: ret, k: keepAll},
	{label: "drop", code: ret, k: dropIt},
}

// Program is the filter: 0 (drop) for a frame to a loopback or
// unspecified address, to an address in one of the prefixes drop (the
// gateway, when it must not lead anywhere; link-local addresses, where
// cloud metadata services answer) and for one of another protocol than
// IPv4, IPv6 or ARP; the whole frame otherwise. A prefix of length 0 is
// ignored.
func Program(drop ...netip.Prefix) []unix.SockFilter {
	var ops []op
	for _, o := range base {
		if o.label != "v4" && o.label != "v6" {
			ops = append(ops, o)
			continue
		}
		// The label marks a no-op, followed by the checks for drop.
		ops = append(ops, op{label: o.label, code: ldi})
		for i, p := range drop {
			a := p.Addr()
			switch {
			case o.label == "v4" && a.Is4():
				ops = append(ops, prefixOps(p, offDst4, fmt.Sprintf("v4skip%d", i))...)
			case o.label == "v6" && a.Is6() && !a.Is4In6():
				ops = append(ops, prefixOps(p, offDst6, fmt.Sprintf("v6skip%d", i))...)
			}
		}
	}
	p, err := assemble(ops)
	if err != nil {
		panic(err) // the table above is wrong
	}
	return p
}

// prefixOps compares the destination address at offset off with prefix p,
// a 32-bit word at a time (the last one masked): a match drops the frame,
// a mismatch goes on at label skip.
func prefixOps(p netip.Prefix, off uint32, skip string) []op {
	bits := p.Bits()
	if bits <= 0 {
		return nil
	}
	b := p.Masked().Addr().AsSlice()
	var ops []op
	for i := 0; i < len(b) && bits > 0; i += 4 {
		n := min(bits, 32)
		bits -= n
		ops = append(ops, op{code: ldw, k: off + uint32(i)})
		if n < 32 {
			ops = append(ops, op{code: and, k: ^uint32(0) << (32 - n)})
		}
		w := binary.BigEndian.Uint32(b[i:])
		if bits == 0 {
			ops = append(ops, op{code: jeq, k: w, jt: "drop"})
		} else {
			ops = append(ops, op{code: jeq, k: w, jf: skip})
		}
	}
	return append(ops, op{label: skip, code: ldi})
}

// assemble resolves the labels of ops.
func assemble(ops []op) ([]unix.SockFilter, error) {
	at := map[string]int{}
	for i, o := range ops {
		if o.label != "" {
			at[o.label] = i
		}
	}
	out := make([]unix.SockFilter, len(ops))
	for i, o := range ops {
		f := unix.SockFilter{Code: o.code, K: o.k}
		if o.code&0x07 == unix.BPF_JMP {
			for _, j := range []struct {
				name string
				to   *uint8
			}{{o.jt, &f.Jt}, {o.jf, &f.Jf}} {
				if j.name == "" {
					continue
				}
				t, ok := at[j.name]
				if !ok || t <= i || t-i-1 > 255 {
					return nil, fmt.Errorf("tapfilter: bad jump %q at %d", j.name, i)
				}
				*j.to = uint8(t - i - 1)
			}
		}
		out[i] = f
	}
	return out, nil
}
