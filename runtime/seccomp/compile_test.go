package seccomp

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"

	"go/format"
	"reflect"

	mseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite zprogram.go")

// eval runs prog on one seccomp_data, as the kernel would.
func eval(t *testing.T, prog []unix.SockFilter, audit, nr uint32, args [6]uint64) uint32 {
	t.Helper()
	var data [64]byte
	binary.LittleEndian.PutUint32(data[offNr:], nr)
	binary.LittleEndian.PutUint32(data[offArch:], audit)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[offArgs+8*i:], a)
	}
	var acc, x uint32
	var mem [16]uint32
	stored := [16]bool{}
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case opLdImm:
			acc = in.K
		case opLdMem:
			if !stored[in.K] {
				t.Fatalf("pc %d: M[%d] read before written", pc, in.K)
			}
			acc = mem[in.K]
		case opSt:
			mem[in.K], stored[in.K] = acc, true
		case opTax:
			x = acc
		case opLshX:
			acc <<= x & 31
		case opSub:
			acc -= in.K
		case opLdAbs:
			if in.K+4 > uint32(len(data)) || in.K%4 != 0 {
				t.Fatalf("pc %d: load at %d", pc, in.K)
			}
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case opAnd:
			acc &= in.K
		case opJa:
			pc += int(in.K)
		case opJeq, opJgt, opJge, opJset:
			var ok bool
			switch in.Code {
			case opJeq:
				ok = acc == in.K
			case opJgt:
				ok = acc > in.K
			case opJset:
				ok = acc&in.K != 0
			default:
				ok = acc >= in.K
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case opRet:
			return in.K
		default:
			t.Fatalf("pc %d: opcode %#x", pc, in.Code)
		}
	}
	t.Fatalf("ran off the end of the filter")
	return 0
}

const (
	allow  = unix.SECCOMP_RET_ALLOW
	eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	kill   = unix.SECCOMP_RET_KILL_PROCESS
)

const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// TestPolicy evaluates the compiled filters of both host architectures, for
// every ABI they cover, against what the profile (and devbox's addition)
// says.
func TestPolicy(t *testing.T) {
	sysAdmin := DefaultCaps | 1<<unix.CAP_SYS_ADMIN
	ptrace := DefaultCaps | 1<<unix.CAP_SYS_PTRACE
	tests := []struct {
		target string
		abi    string // key of abis; "" with audit for a foreign arch
		audit  uint32
		caps   uint64
		name   string
		nr     uint32 // when name is ""
		args   [6]uint64
		want   uint32
	}{
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "read", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "newfstatat", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "arch_prctl", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "mount", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: sysAdmin, name: "mount", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "unshare", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: sysAdmin, name: "unshare", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "setns", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "keyctl", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: sysAdmin, name: "keyctl", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "io_uring_setup", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "clone3", want: enosys},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: sysAdmin, name: "clone3", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "clone", args: [6]uint64{unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD)}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "clone", args: [6]uint64{unix.CLONE_NEWUSER}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "clone", args: [6]uint64{unix.CLONE_NEWCGROUP | 1<<40}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "clone", args: [6]uint64{1 << 40}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: sysAdmin, name: "clone", args: [6]uint64{nsFlags}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "personality", args: [6]uint64{0xffffffff}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "personality", args: [6]uint64{0x20008}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "personality", args: [6]uint64{0x0040000}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "personality", args: [6]uint64{1<<32 | 8}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "socket", args: [6]uint64{unix.AF_UNIX}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "socket", args: [6]uint64{unix.AF_INET6}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "socket", args: [6]uint64{unix.AF_NETLINK}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "socket", args: [6]uint64{unix.AF_VSOCK}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "socket", args: [6]uint64{unix.AF_ALG}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "socket", args: [6]uint64{1<<32 | unix.AF_INET}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "ioctl", args: [6]uint64{0, unix.TCGETS}, want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "ioctl", args: [6]uint64{0, tiocsti}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: sysAdmin, name: "ioctl", args: [6]uint64{0, 0x123<<32 | tiocsti}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "ioctl", args: [6]uint64{0, tioclinux}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "ptrace", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "kcmp", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: ptrace, name: "kcmp", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, name: "chroot", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps &^ (1 << unix.CAP_SYS_CHROOT), name: "chroot", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, nr: 1000, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86_64", caps: DefaultCaps, nr: 0xffffffff, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X32", caps: DefaultCaps, name: "read", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X32", caps: DefaultCaps, name: "rt_sigaction", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X32", caps: DefaultCaps, name: "mount", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X32", caps: DefaultCaps, name: "ioctl", args: [6]uint64{0, 0x123<<32 | tiocsti}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X32", caps: DefaultCaps, name: "clone3", want: enosys},
		{target: "amd64", abi: "SCMP_ARCH_X86", caps: DefaultCaps, name: "read", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86", caps: DefaultCaps, name: "socketcall", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86", caps: DefaultCaps, name: "set_thread_area", want: allow},
		{target: "amd64", abi: "SCMP_ARCH_X86", caps: DefaultCaps, name: "unshare", want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86", caps: DefaultCaps, name: "clone", args: [6]uint64{unix.CLONE_NEWNET}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86", caps: DefaultCaps, name: "ioctl", args: [6]uint64{0, tiocsti}, want: eperm},
		{target: "amd64", abi: "SCMP_ARCH_X86", caps: DefaultCaps, name: "clone3", want: enosys},
		{target: "amd64", audit: auditArchAArch64, caps: DefaultCaps, nr: 63, want: kill},
		{target: "arm64", abi: "SCMP_ARCH_AARCH64", caps: DefaultCaps, name: "read", want: allow},
		{target: "arm64", abi: "SCMP_ARCH_AARCH64", caps: DefaultCaps, name: "newfstatat", want: allow},
		{target: "arm64", abi: "SCMP_ARCH_AARCH64", caps: DefaultCaps, name: "mount", want: eperm},
		{target: "arm64", abi: "SCMP_ARCH_AARCH64", caps: DefaultCaps, name: "clone3", want: enosys},
		{target: "arm64", abi: "SCMP_ARCH_AARCH64", caps: DefaultCaps, name: "clone", args: [6]uint64{unix.CLONE_NEWPID}, want: eperm},
		{target: "arm64", abi: "SCMP_ARCH_AARCH64", caps: DefaultCaps, name: "ioctl", args: [6]uint64{0, 0x123<<32 | tiocsti}, want: eperm},
		{target: "arm64", abi: "SCMP_ARCH_ARM", caps: DefaultCaps, name: "set_tls", want: allow},
		{target: "arm64", abi: "SCMP_ARCH_ARM", caps: DefaultCaps, name: "cacheflush", want: allow},
		{target: "arm64", abi: "SCMP_ARCH_ARM", caps: DefaultCaps, name: "read", want: allow},
		{target: "arm64", abi: "SCMP_ARCH_ARM", caps: DefaultCaps, name: "setns", want: eperm},
		{target: "arm64", abi: "SCMP_ARCH_ARM", caps: DefaultCaps, name: "ioctl", args: [6]uint64{0, tioclinux}, want: eperm},
		{target: "arm64", audit: auditArchX86_64, caps: DefaultCaps, nr: 0, want: kill},
	}
	progs := map[string]map[uint64][]unix.SockFilter{}
	for _, tt := range tests {
		label := tt.name
		if label == "" {
			label = fmt.Sprint(tt.nr)
		}
		t.Run(fmt.Sprintf("%s/%s/%#x/%s/%x", tt.target, tt.abi, tt.caps, label, tt.args[:2]), func(t *testing.T) {
			if progs[tt.target] == nil {
				progs[tt.target] = map[uint64][]unix.SockFilter{}
			}
			prog := progs[tt.target][tt.caps]
			if prog == nil {
				var err error
				prog, err = compile(&defaultProfile, tt.caps, mustTarget(tt.target))
				if err != nil {
					t.Fatal(err)
				}
				progs[tt.target][tt.caps] = prog
			}
			audit, nr := tt.audit, tt.nr
			if tt.abi != "" {
				a := mustABI(tt.abi)
				audit = a.audit
				if tt.name != "" {
					var ok bool
					if nr, ok = a.lookup(tt.name); !ok {
						t.Fatalf("%s has no %s", tt.abi, tt.name)
					}
				}
			}
			if got := eval(t, prog, audit, nr, tt.args); got != tt.want {
				t.Errorf("verdict %#x, want %#x", got, tt.want)
			}
		})
	}
}

// holds is the reference meaning of a condition (low halves only on a
// 32-bit ABI).
func holds(cd cond, x uint64, bits int) bool {
	v, v2 := cd.v, cd.v2
	if bits == 32 {
		x = uint64(uint32(x))
	}
	switch cd.op {
	case opEqualTo:
		return x == v
	case opNotEqual:
		return x != v
	case opGreaterThan:
		return x > v
	case opGreaterEqual:
		return x >= v
	case opLessThan:
		return x < v
	case opLessEqual:
		return x <= v
	case opMaskedEqual:
		return x&v == v2
	}
	panic(cd.op)
}

// TestConditions checks argument rules, alone and merged into value sets,
// on both argument widths, at the edges of 64-bit values, against holds.
func TestConditions(t *testing.T) {
	const v = 0x1_0000_0010
	eq := func(x uint64) rule { return rule{action: allow, conds: []cond{{arg: 2, op: opEqualTo, v: x}}} }
	one := func(op string, x, x2 uint64) []rule {
		return []rule{{action: allow, conds: []cond{{arg: 2, op: op, v: x, v2: x2}}}}
	}
	tests := []struct {
		name  string
		bits  int
		rules []rule
	}{
		{"eq", 64, one(opEqualTo, v, 0)},
		{"ne", 64, one(opNotEqual, v, 0)},
		{"gt", 64, one(opGreaterThan, v, 0)},
		{"ge", 64, one(opGreaterEqual, v, 0)},
		{"lt", 64, one(opLessThan, v, 0)},
		{"le", 64, one(opLessEqual, v, 0)},
		{"masked", 64, one(opMaskedEqual, v, 0x1_0000_0000)},
		{"masked low", 64, one(opMaskedEqual, 0xffffffff, 0x10)},
		{"eq small", 64, one(opEqualTo, 0x10, 0)},
		{"lt small", 64, one(opLessThan, 0x11, 0)},
		{"eq 32", 32, one(opEqualTo, 0x10, 0)},
		{"gt 32", 32, one(opGreaterThan, 0x10, 0)},
		{"le 32", 32, one(opLessEqual, 0x10, 0)},
		{"masked 32", 32, one(opMaskedEqual, 0xf0, 0x10)},
		{"bitmap set", 64, []rule{eq(0), eq(1), eq(0xf), eq(0x10), eq(0x2f), eq(63)}},
		{"bitmap low set", 32, []rule{eq(1), eq(2), eq(0xf), eq(0x10), eq(0x1f)}},
		{"chain set", 64, []rule{eq(0x10), eq(0xffffffff), eq(0x20000), eq(0x11)}},
		{"range and set", 64, append(one(opLessThan, 3, 0), eq(0xf), eq(0x10), eq(0x11), eq(40))},
		{"mixed actions", 64, []rule{eq(0xf), {action: kill, conds: []cond{{arg: 2, op: opEqualTo, v: 0x10}}}, eq(0x11)}},
		{"two conditions", 64, []rule{{action: allow, conds: []cond{
			{arg: 2, op: opGreaterEqual, v: 0x10}, {arg: 2, op: opLessThan, v: v}}}}},
	}
	var inputs []uint64
	for _, x := range []uint64{0, 1, 2, 3, 0xf, 0x10, 0x11, 0x1f, 0x20, 0x2f, 40, 63, 64, 0x20000, 0xffffffff,
		v - 1, v, v + 1, 0x1_ffff_ffff, 0x2_0000_0010, 1<<64 - 1} {
		inputs = append(inputs, x, x|1<<32, x|1<<63)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &compiler{def: eperm, pool: map[uint32]*label{}}
			c.a.load(offNr)
			if err := c.rules(verdict{rules: tt.rules, fallback: eperm}, tt.bits, c.a.newLabel()); err != nil {
				t.Fatal(err)
			}
			for _, act := range c.poolList {
				c.a.bind(c.pool[act])
				c.a.ret(act)
			}
			prog, err := c.a.assemble()
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range inputs {
				want := uint32(eperm)
				for _, r := range tt.rules {
					if !slices.ContainsFunc(r.conds, func(cd cond) bool { return !holds(cd, x, tt.bits) }) {
						want = r.action
						break
					}
				}
				if got := eval(t, prog, 0, 0, [6]uint64{2: x}); got != want {
					t.Errorf("arg %#x: %#x, want %#x", x, got, want)
				}
			}
		})
	}
}

// TestAssembleFarJumps checks trampolines for jumps past 255 instructions.
func TestAssembleFarJumps(t *testing.T) {
	var a asm
	far, near := a.newLabel(), a.newLabel()
	a.load(offNr)
	a.jump(opJeq, 7, far, near)
	a.bind(near)
	for i := 0; i < 600; i++ {
		a.ret(uint32(i))
	}
	a.bind(far)
	a.ret(allow)
	prog, err := a.assemble()
	if err != nil {
		t.Fatal(err)
	}
	if got := eval(t, prog, 0, 7, [6]uint64{}); got != allow {
		t.Errorf("nr 7: %#x", got)
	}
	if got := eval(t, prog, 0, 8, [6]uint64{}); got != 0 {
		t.Errorf("nr 8: %#x", got)
	}
}

func TestDefaultCaps(t *testing.T) {
	var names []string
	for i, n := range CapNames {
		if DefaultCaps&(1<<uint(i)) != 0 {
			names = append(names, "CAP_"+n)
		}
	}
	want := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP"}
	if !slices.Equal(names, want) {
		t.Errorf("DefaultCaps = %v, want %v", names, want)
	}
	if len(CapNames) != unix.CAP_LAST_CAP+1 {
		t.Errorf("%d capability names, the kernel headers know %d", len(CapNames), unix.CAP_LAST_CAP+1)
	}
	if unix.TIOCSTI != tiocsti || unix.TIOCLINUX != tioclinux {
		t.Errorf("TIOCSTI/TIOCLINUX differ on this architecture")
	}
}

// TestGeneratedProgram checks the generated files against their sources:
// zprofile.go against github.com/moby/profiles/seccomp's DefaultProfile,
// zprogram.go against a fresh compile. -update rewrites both.
func TestGeneratedProgram(t *testing.T) {
	moby, err := fromMoby(mseccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	if !*update && !reflect.DeepEqual(moby, defaultProfile) {
		t.Errorf("zprofile.go differs from moby's DefaultProfile: run go generate ./runtime/seccomp")
	}
	var pbuf bytes.Buffer
	pbuf.WriteString("// Code generated by go test -run TestGeneratedProgram -update; DO NOT EDIT.\n\n")
	pbuf.WriteString("package seccomp\n\n")
	pbuf.WriteString("// defaultProfile is github.com/moby/profiles/seccomp's DefaultProfile().\n")
	writeProfile(&pbuf, moby)

	var buf bytes.Buffer
	buf.WriteString("// Code generated by go test -run TestGeneratedProgram -update; DO NOT EDIT.\n\n")
	buf.WriteString("package seccomp\n\nimport \"golang.org/x/sys/unix\"\n")
	for _, tt := range []struct {
		target, name string
		have         []unix.SockFilter
	}{
		{"amd64", "defaultProgramAMD64", defaultProgramAMD64[:]},
		{"arm64", "defaultProgramARM64", defaultProgramARM64[:]},
	} {
		prog, err := compile(&moby, DefaultCaps, mustTarget(tt.target))
		if err != nil {
			t.Fatal(err)
		}
		if !*update && !slices.Equal(prog, tt.have) {
			t.Errorf("%s is stale (%d instructions, recompiled %d): run go generate ./runtime/seccomp", tt.name, len(tt.have), len(prog))
		}
		fmt.Fprintf(&buf, "\n// %s is the filter for DefaultCaps on %s (%d instructions).\n", tt.name, tt.target, len(prog))
		fmt.Fprintf(&buf, "var %s = [...]unix.SockFilter{\n", tt.name)
		for _, in := range prog {
			fmt.Fprintf(&buf, "\t{Code: %#04x, Jt: %d, Jf: %d, K: %#x},\n", in.Code, in.Jt, in.Jf, in.K)
		}
		buf.WriteString("}\n")
	}
	if *update {
		for file, b := range map[string][]byte{"zprofile.go": pbuf.Bytes(), "zprogram.go": buf.Bytes()} {
			src, err := format.Source(b)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if err := os.WriteFile(file, src, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// constAllow is the kernel's seccomp_is_const_allow: it emulates the filter
// for one syscall without arguments and gives up at anything but loads of
// nr/arch, jumps, AND and returns.
func constAllow(prog []unix.SockFilter, audit, nr uint32) bool {
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case opLdAbs:
			switch in.K {
			case offNr:
				acc = nr
			case offArch:
				acc = audit
			default:
				return false
			}
		case opRet:
			return in.K == allow
		case opJa:
			pc += int(in.K)
		case opJeq, opJge, opJgt, opJset:
			var ok bool
			switch in.Code {
			case opJeq:
				ok = acc == in.K
			case opJge:
				ok = acc >= in.K
			case opJgt:
				ok = acc > in.K
			default:
				ok = acc&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case opAnd:
			acc &= in.K
		default:
			return false
		}
	}
	return false
}

// TestKernelCache checks that the kernel can tell, for every native syscall
// the filter allows whatever its arguments, that it does: those then skip
// the filter at run time.
func TestKernelCache(t *testing.T) {
	for _, name := range []string{"amd64", "arm64"} {
		t.Run(name, func(t *testing.T) {
			tg := mustTarget(name)
			p := &defaultProfile
			prog, err := compile(p, DefaultCaps, tg)
			if err != nil {
				t.Fatal(err)
			}
			native := mustABI(tg.scmp)
			// Arguments that some rule of the profile or devbox denies.
			argSets := [][6]uint64{{}, {^uint64(0), ^uint64(0)}, {1: tiocsti}, {unix.AF_VSOCK},
				{unix.CLONE_NEWUSER}, {0x0040000}}
			n := 0
			for nr := uint32(0); nr < 1024; nr++ {
				want := true
				for _, args := range argSets {
					want = want && eval(t, prog, native.audit, nr, args) == allow
				}
				if got := constAllow(prog, native.audit, nr); got != want {
					t.Errorf("%s syscall %d: kernel cache sees allow=%v, want %v", native.scmp, nr, got, want)
				}
				if want {
					n++
				}
			}
			if n < 250 {
				t.Errorf("only %d syscalls allowed unconditionally", n)
			}
		})
	}
}

func mustTarget(goarch string) target {
	t, ok := targetFor(goarch)
	if !ok {
		panic(goarch)
	}
	return t
}

func mustABI(name string) *abi {
	a, ok := abiNamed(name)
	if !ok {
		panic(name)
	}
	return a
}
