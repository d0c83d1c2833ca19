package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Classic BPF opcodes (linux/filter.h) used by the compiler.
const (
	opLdAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAnd   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	opJa    = unix.BPF_JMP | unix.BPF_JA
	opRet   = unix.BPF_RET | unix.BPF_K
	opSub   = unix.BPF_ALU | unix.BPF_SUB | unix.BPF_K
	opLshX  = unix.BPF_ALU | unix.BPF_LSH | unix.BPF_X
	opLdImm = unix.BPF_LD | unix.BPF_IMM
	opLdMem = unix.BPF_LD | unix.BPF_MEM
	opSt    = unix.BPF_ST
	opTax   = unix.BPF_MISC | unix.BPF_TAX
)

// maxInsns is the kernel's BPF_MAXINSNS, the length limit of one filter.
const maxInsns = 4096

// insn is an instruction whose jump targets are still symbolic.
type insn struct {
	op     uint16
	k      uint32
	jt, jf *label // conditional jumps
	ja     *label // BPF_JA
	pos    int
}

// label names the instruction emitted after bind; every jump goes forward.
type label struct{ at *insn }

// asm collects instructions and resolves labels, inserting a BPF_JA
// trampoline wherever a conditional jump is farther than its 8-bit offset.
type asm struct {
	code    []*insn
	pending []*label
}

func (a *asm) newLabel() *label { return &label{} }

// bind points l at the next instruction.
func (a *asm) bind(l *label) { a.pending = append(a.pending, l) }

func (a *asm) emit(in *insn) {
	for _, l := range a.pending {
		l.at = in
	}
	a.pending = a.pending[:0]
	a.code = append(a.code, in)
}

func (a *asm) load(off uint32)        { a.emit(&insn{op: opLdAbs, k: off}) }
func (a *asm) and(k uint32)           { a.emit(&insn{op: opAnd, k: k}) }
func (a *asm) ret(action uint32)      { a.emit(&insn{op: opRet, k: action}) }
func (a *asm) op(op uint16, k uint32) { a.emit(&insn{op: op, k: k}) }

// bit puts 1<<(A&31) in A (clobbering X).
func (a *asm) bit() {
	a.and(31)
	a.op(opTax, 0)
	a.op(opLdImm, 1)
	a.op(opLshX, 0)
}

// jump emits "if A op k goto t else goto f".
func (a *asm) jump(op uint16, k uint32, t, f *label) { a.emit(&insn{op: op, k: k, jt: t, jf: f}) }

// assemble resolves the labels into offsets.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	if len(a.pending) != 0 {
		return nil, fmt.Errorf("label bound past the last instruction")
	}
	code := a.code
	for {
		for i, in := range code {
			in.pos = i
		}
		var out []*insn
		for _, in := range code {
			out = append(out, in)
			if in.jt == nil {
				continue
			}
			if dist(in, in.jt) > 255 {
				t := &insn{op: opJa, ja: in.jt}
				in.jt = &label{at: t}
				out = append(out, t)
			}
			if dist(in, in.jf) > 255 {
				f := &insn{op: opJa, ja: in.jf}
				in.jf = &label{at: f}
				out = append(out, f)
			}
		}
		if len(out) == len(code) {
			break
		}
		code = out
	}
	if len(code) > maxInsns {
		return nil, fmt.Errorf("filter has %d instructions, more than the kernel's %d", len(code), maxInsns)
	}
	prog := make([]unix.SockFilter, len(code))
	for i, in := range code {
		f := unix.SockFilter{Code: in.op, K: in.k}
		switch {
		case in.jt != nil:
			t, e := dist(in, in.jt), dist(in, in.jf)
			if t < 0 || e < 0 {
				return nil, fmt.Errorf("backward jump at %d", i)
			}
			f.Jt, f.Jf = uint8(t), uint8(e)
		case in.ja != nil:
			d := dist(in, in.ja)
			if d < 0 {
				return nil, fmt.Errorf("backward jump at %d", i)
			}
			f.K = uint32(d)
		}
		prog[i] = f
	}
	if prog[len(prog)-1].Code != opRet {
		return nil, fmt.Errorf("filter does not end in a return")
	}
	return prog, nil
}

// dist is the jump offset from in to l, by the positions of the last layout
// pass (a later pass re-checks what an insertion moved).
func dist(in *insn, l *label) int {
	if l.at == nil {
		return -1
	}
	return l.at.pos - in.pos - 1
}
