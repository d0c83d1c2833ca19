package seccomp

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Offsets into struct seccomp_data; every ABI covered is little-endian, so an
// argument's low half comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// nativeCache lays out the native ABI's search with comparisons only, so
// that the kernel's per-syscall cache can skip the filter for the syscalls
// it allows unconditionally (see group). It costs about 15 µs more per
// Install than bitmaps everywhere and saves about 14 ns per such syscall;
// docs/security.md has the figures.
const nativeCache = true

// badArchAction is the verdict for an audit architecture the filter does not
// describe. Every ABI the host's kernel offers is described, so only a
// kernel with an ABI this package does not know reaches it; killing the
// process is the one answer that cannot let an unfiltered syscall through.
const badArchAction = unix.SECCOMP_RET_KILL_PROCESS

// The TTY ioctls denied on top of the profile. x86 and arm both use
// asm-generic/ioctls.h, so the numbers are the same for every ABI covered.
const (
	tiocsti   = 0x5412
	tioclinux = 0x541c
)

// CapNames are the kernel's capabilities by number (linux/capability.h),
// without the CAP_ prefix: the one table of them (the runtime's flags,
// specs and bounding set use it too).
var CapNames = [...]string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// hasCap reports whether the capability called name is in caps; a name this
// package does not know is never held.
func hasCap(caps uint64, name string) bool {
	n, ok := strings.CutPrefix(name, "CAP_")
	i := slices.Index(CapNames[:], n)
	if !ok {
		i = -1
	}
	return i >= 0 && caps&(1<<uint(i)) != 0
}

// extraRules are devbox's additions to the profile: TIOCSTI (push input into
// a terminal, the classic escape from a box sharing the user's terminal) and
// TIOCLINUX (its virtual-console twin) fail with EPERM. Only the low 32 bits
// of the request are compared, as the kernel does (cmd is an unsigned int):
// a request with high bits set (CVE-2019-10063) is denied too.
func extraRules() []profileRule {
	var out []profileRule
	for _, req := range []uint64{tiocsti, tioclinux} {
		out = append(out, profileRule{
			names:  []string{"ioctl"},
			action: actErrno,
			errno:  int(unix.EPERM),
			args:   []profileArg{{index: 1, value: 0xffffffff, valueTwo: req, op: opMaskedEqual}},
		})
	}
	return out
}

// cond is one argument comparison, as in the runtime spec: for
// OpMaskedEqual, v is the mask and v2 the value.
type cond struct {
	arg   uint
	op    string
	v, v2 uint64
}

// rule returns action when all its conditions hold.
type rule struct {
	action uint32
	conds  []cond
}

// sysRules is what the filter does with one syscall number: the first
// conditional rule that matches decides; otherwise the unconditional action
// if there is one, otherwise the profile's default.
type sysRules struct {
	rules     []rule
	hasUncond bool
	uncond    uint32
}

// compile turns profile into a filter for a process with capability
// bounding set caps on host architecture t.
//
// It follows moby's reading of the profile (seccomp_linux.go setupSeccomp):
// the ABIs are the native one and its sub-architectures from archMap; a rule
// is kept if its includes hold (native arch listed, all caps held) and its
// excludes do not (native arch listed, or any cap held). minKernel always
// counts as reached. Each kept rule applies to every ABI on which its
// syscall names exist; names an ABI lacks are skipped there, as runc does.
// Comparisons on one argument index repeated within a rule are ORed (runc's
// reading), other comparisons ANDed.
func compile(p *profile, caps uint64, t target) ([]unix.SockFilter, error) {
	abiList, tables, def, err := rulesByABI(p, caps, t)
	if err != nil {
		return nil, err
	}
	c := &compiler{def: def}
	if nativeCache {
		c.native = t.scmp
	}
	if err := c.emit(abiList, tables); err != nil {
		return nil, err
	}
	return c.a.assemble()
}

// rulesByABI evaluates the profile: the ABIs covered, per ABI the rules by
// syscall number, and the default action.
func rulesByABI(p *profile, caps uint64, t target) ([]*abi, []map[uint32]*sysRules, uint32, error) {
	abiList, err := filterABIs(p, t)
	if err != nil {
		return nil, nil, 0, err
	}
	def, err := action(p.defaultAction, p.defaultErrno)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("default action: %w", err)
	}
	tables := make([]map[uint32]*sysRules, len(abiList))
	for i := range tables {
		tables[i] = map[uint32]*sysRules{}
	}
	entries := append(slices.Clone(p.rules), extraRules()...)
	for _, s := range entries {
		if !applies(s, caps, t) {
			continue
		}
		names := s.names
		act, err := action(s.action, s.errno)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%v: %w", names, err)
		}
		rules, err := argRules(s.args, act)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%v: %w", names, err)
		}
		for i, a := range abiList {
			for _, name := range names {
				nr, ok := a.lookup(name)
				if !ok {
					continue
				}
				sr := tables[i][nr]
				if sr == nil {
					sr = &sysRules{}
					tables[i][nr] = sr
				}
				if rules == nil {
					if sr.hasUncond && sr.uncond != act {
						return nil, nil, 0, fmt.Errorf("%s: two unconditional actions (%#x, %#x)", name, sr.uncond, act)
					}
					sr.hasUncond, sr.uncond = true, act
					continue
				}
				sr.rules = append(sr.rules, rules...)
			}
		}
	}

	return abiList, tables, def, nil
}

// filterABIs returns the ABIs the filter for t covers, native first.
func filterABIs(p *profile, t target) ([]*abi, error) {
	names := []string{t.scmp}
	for _, m := range p.archMap {
		if m.arch == t.scmp {
			names = append(names, m.subArches...)
			break
		}
	}
	var out []*abi
	for _, n := range names {
		a, ok := abiNamed(n)
		if !ok {
			return nil, fmt.Errorf("architecture %s is not supported", n)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// applies evaluates a rule's includes and excludes.
func applies(s profileRule, caps uint64, t target) bool {
	if ex := s.exclude; slices.Contains(ex.arches, t.native) ||
		slices.ContainsFunc(ex.caps, func(c string) bool { return hasCap(caps, c) }) || ex.minKernel {
		return false
	}
	in := s.include
	if len(in.arches) > 0 && !slices.Contains(in.arches, t.native) {
		return false
	}
	return !slices.ContainsFunc(in.caps, func(c string) bool { return !hasCap(caps, c) })
}

// action encodes a profile action as a seccomp return value.
func action(a string, errnoRet int) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet >= 0 {
		if errnoRet > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errno %d out of range", errnoRet)
		}
		data = uint32(errnoRet)
	}
	switch a {
	case actAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case actErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case actKill, actKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case actKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case actTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case actTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case actLog:
		return unix.SECCOMP_RET_LOG, nil
	}
	return 0, fmt.Errorf("action %q is not supported", a)
}

// argRules turns a rule's argument comparisons into rules; nil means
// unconditional.
func argRules(args []profileArg, act uint32) ([]rule, error) {
	if len(args) == 0 {
		return nil, nil
	}
	conds := make([]cond, len(args))
	repeated := false
	seen := map[uint]bool{}
	for i, a := range args {
		if a.index > 5 {
			return nil, fmt.Errorf("argument index %d out of range", a.index)
		}
		switch a.op {
		case opEqualTo, opNotEqual, opGreaterThan, opGreaterEqual, opLessThan, opLessEqual, opMaskedEqual:
		default:
			return nil, fmt.Errorf("operator %q is not supported", a.op)
		}
		repeated = repeated || seen[a.index]
		seen[a.index] = true
		conds[i] = cond{arg: a.index, op: a.op, v: a.value, v2: a.valueTwo}
	}
	if !repeated {
		return []rule{{action: act, conds: conds}}, nil
	}
	out := make([]rule, len(conds))
	for i, c := range conds {
		out[i] = rule{action: act, conds: []cond{c}}
	}
	return out, nil
}

// verdict is what the filter does with one syscall number: the first rule
// that matches decides, else fallback.
type verdict struct {
	rules    []rule
	fallback uint32
}

func (v verdict) simple() bool { return len(v.rules) == 0 }

func (v verdict) equal(w verdict) bool {
	return v.fallback == w.fallback && slices.EqualFunc(v.rules, w.rules, func(a, b rule) bool {
		return a.action == b.action && slices.Equal(a.conds, b.conds)
	})
}

// section maps syscall numbers, relative to an ABI's nrBase, to verdicts;
// a number it lacks gets the default action.
type section map[uint32]verdict

// bitSlot is the scratch memory word holding 1<<(nr&31).
const bitSlot = 0

type compiler struct {
	a      asm
	def    uint32
	native string // the native ABI's scmp name: its section is searched without bitmaps

	// per audit arch group: the return instructions jumped to, and the
	// argument checks still to emit, both laid out after the search tree.
	pool     map[uint32]*label
	poolList []uint32
	deferred []func() error
	shared   map[string]*label
}

// ret returns the label of the group's shared "ret action".
func (c *compiler) ret(action uint32) *label {
	l, ok := c.pool[action]
	if !ok {
		l = c.a.newLabel()
		c.pool[action] = l
		c.poolList = append(c.poolList, action)
	}
	return l
}

// emit lays out: dispatch on the audit arch, then per arch a binary search
// over runs and 32-number bitmaps of syscall numbers; argument checks and the
// returns follow each arch's tree.
func (c *compiler) emit(abiList []*abi, tables []map[uint32]*sysRules) error {
	a := &c.a
	var audits []uint32
	group := map[uint32][]int{}
	for i, ab := range abiList {
		if _, ok := group[ab.audit]; !ok {
			audits = append(audits, ab.audit)
		}
		group[ab.audit] = append(group[ab.audit], i)
	}
	a.load(offArch)
	entry := make([]*label, len(audits))
	for i, au := range audits {
		entry[i] = a.newLabel()
		next := a.newLabel()
		a.jump(opJeq, au, entry[i], next)
		a.bind(next)
	}
	a.ret(badArchAction)
	for i, au := range audits {
		a.bind(entry[i])
		members := group[au]
		sort.Slice(members, func(x, y int) bool { return abiList[members[x]].nrBase < abiList[members[y]].nrBase })
		if abiList[members[0]].nrBase != 0 {
			return fmt.Errorf("no ABI starts at syscall 0 for audit arch %#x", au)
		}
		var mabis []*abi
		var secs []section
		for _, m := range members {
			mabis = append(mabis, abiList[m])
			secs = append(secs, c.section(tables[m], abiList[m].nrBase))
		}
		if err := c.group(mabis, secs); err != nil {
			return err
		}
	}
	return nil
}

// section turns an ABI's rules into verdicts by relative number.
func (c *compiler) section(t map[uint32]*sysRules, base uint32) section {
	s := section{}
	for nr, sr := range t {
		v := verdict{fallback: c.def}
		if sr.hasUncond {
			v.fallback = sr.uncond
		}
		// Trailing rules that agree with the fallback change nothing.
		rules := sr.rules
		for len(rules) > 0 && rules[len(rules)-1].action == v.fallback {
			rules = rules[:len(rules)-1]
		}
		v.rules = rules
		if v.simple() && v.fallback == c.def {
			continue
		}
		s[nr-base] = v
	}
	return s
}

// merge folds ABIs that share an audit arch (x86_64 and x32) into one
// section when no syscall number that both define gets different verdicts
// from them. A number only one ABI defines takes that ABI's verdict on both:
// the other's kernel table has nothing there and answers ENOSYS whatever
// the filter lets through. (x32 and x86_64 share the numbers of their common
// syscalls; x86_64 has nothing from 512 on, where x32's own ones live.)
func merge(abiList []*abi, secs []section) (section, bool) {
	defined := make([]map[uint32]bool, len(abiList))
	for i, ab := range abiList {
		defined[i] = map[uint32]bool{}
		for _, e := range sysTable {
			if nr := e.nr[ab.column]; nr >= 0 {
				defined[i][uint32(nr)] = true
			}
		}
	}
	out := section{}
	for i, s := range secs {
		for nr, v := range s {
			if !defined[i][nr] {
				continue
			}
			for j := range secs {
				if j != i && defined[j][nr] {
					if w, ok := secs[j][nr]; !ok || !w.equal(v) {
						return nil, false
					}
				}
			}
			out[nr] = v
		}
	}
	// A number both define and neither lists keeps the default.
	return out, true
}

// group emits the code for the ABIs of one audit arch, A = the syscall
// number on entry.
func (c *compiler) group(abiList []*abi, secs []section) error {
	a := &c.a
	c.pool, c.poolList, c.deferred, c.shared = map[uint32]*label{}, nil, nil, map[string]*label{}
	leafSets := make([][]leaf, len(secs))
	needBit := false
	merged, ok := section(nil), false
	if len(secs) > 1 {
		merged, ok = merge(abiList, secs)
	}
	// The kernel caches, per syscall number of the native ABI (and of the
	// compat one), whether the filter allows it whatever the arguments, and
	// then skips the filter for it. It finds out by emulating the filter,
	// which gives up at an instruction other than loads of nr/arch, jumps,
	// AND and returns, such as the shift a bitmap needs. So the native
	// ABI's search uses only comparisons (more instructions, but the
	// common syscalls of a box then cost nothing); the others use bitmaps.
	plain := slices.ContainsFunc(abiList, func(ab *abi) bool { return ab.scmp == c.native })
	if ok {
		leafSets = [][]leaf{c.leaves(merged, plain)}
	} else {
		for i, s := range secs {
			leafSets[i] = c.leaves(s, plain && abiList[i].scmp == c.native)
		}
	}
	for _, ls := range leafSets {
		for _, l := range ls {
			needBit = needBit || l.mask != 0
		}
	}
	a.load(offNr)
	if needBit {
		// Every base is a multiple of 32, so nr&31 is the same relative.
		a.bit()
		a.op(opSt, bitSlot)
		a.load(offNr)
	}
	if ok {
		for _, ab := range abiList[1:] {
			sub, skip := a.newLabel(), a.newLabel()
			a.jump(opJge, ab.nrBase, sub, skip)
			a.bind(sub)
			a.op(opSub, ab.nrBase)
			a.bind(skip)
		}
		c.root(leafSets[0], abiList[0].argBits)
	} else {
		for i, ab := range abiList {
			if i > 0 {
				a.op(opSub, ab.nrBase-abiList[i-1].nrBase)
			}
			if i+1 < len(abiList) {
				upper, below := a.newLabel(), a.newLabel()
				a.jump(opJge, abiList[i+1].nrBase-ab.nrBase, upper, below)
				a.bind(below)
				c.root(leafSets[i], ab.argBits)
				a.bind(upper)
				continue
			}
			c.root(leafSets[i], ab.argBits)
		}
	}
	for i := 0; i < len(c.deferred); i++ {
		if err := c.deferred[i](); err != nil {
			return err
		}
	}
	for _, act := range c.poolList {
		a.bind(c.pool[act])
		a.ret(act)
	}
	return nil
}

// leaf is a range of relative syscall numbers decided together: a run with
// one action, one number with argument rules, or an aligned block of 32
// whose simple verdicts are a bitmap (bit set: set, clear: clr) and whose
// other numbers are tested one by one.
type leaf struct {
	lo, hi   uint32
	run      bool
	action   uint32   // run
	rules    *verdict // one number with rules
	set, clr uint32   // bitmap
	mask     uint32
	specials []special
}

type special struct {
	nr uint32
	v  verdict
}

// leaves covers [0, 2^32) for s; plain: with runs and rules leaves only.
func (c *compiler) leaves(s section, plain bool) []leaf {
	var out []leaf
	addRun := func(lo, hi, act uint32) {
		if n := len(out); n > 0 && out[n-1].run && out[n-1].action == act && out[n-1].hi+1 == lo {
			out[n-1].hi = hi
			return
		}
		out = append(out, leaf{lo: lo, hi: hi, run: true, action: act})
	}
	blocks := map[uint32]bool{}
	for nr := range s {
		blocks[nr/32] = true
	}
	order := make([]uint32, 0, len(blocks))
	for b := range blocks {
		order = append(order, b)
	}
	slices.Sort(order)
	if plain {
		nrs := make([]uint32, 0, len(s))
		for nr := range s {
			nrs = append(nrs, nr)
		}
		slices.Sort(nrs)
		next := uint32(0)
		for _, nr := range nrs {
			if nr > next {
				addRun(next, nr-1, c.def)
			}
			if v := s[nr]; v.simple() {
				addRun(nr, nr, v.fallback)
			} else {
				out = append(out, leaf{lo: nr, hi: nr, rules: &v})
			}
			next = nr + 1
		}
		if len(nrs) == 0 || nrs[len(nrs)-1] != 0xffffffff {
			addRun(next, 0xffffffff, c.def)
		}
		return exceptions(out)
	}
	next := uint32(0)
	for _, b := range order {
		lo := b * 32
		if lo > next {
			addRun(next, lo-1, c.def)
		}
		out = append(out, c.block(s, lo))
		if l := &out[len(out)-1]; l.run {
			out = out[:len(out)-1]
			addRun(l.lo, l.hi, l.action)
		}
		next = lo + 32
		if next == 0 { // wrapped: the block ended at 2^32-1
			return out
		}
	}
	addRun(next, 0xffffffff, c.def)
	return out
}

// exceptions folds a single number between two runs of one action into
// that run, as a special tested with one JEQ: two search nodes fewer.
func exceptions(ls []leaf) []leaf {
	var out []leaf
	for _, l := range ls {
		n := len(out)
		if n >= 2 && l.run && out[n-1].lo == out[n-1].hi && out[n-2].lo != out[n-2].hi &&
			(out[n-2].run || out[n-2].mask == 0 && out[n-2].rules == nil) {
			base, one := out[n-2], out[n-1]
			act := base.action
			if !base.run {
				act = base.clr
			}
			if act == l.action {
				v := verdict{fallback: one.action}
				if one.rules != nil {
					v = *one.rules
				}
				if base.run {
					base = leaf{lo: base.lo, clr: act, set: act}
				}
				base.specials = append(base.specials, special{one.lo, v})
				base.hi = l.hi
				out = append(out[:n-2], base)
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

// block makes the leaf for [lo, lo+32).
func (c *compiler) block(s section, lo uint32) leaf {
	count := map[uint32]int{}
	var acts []uint32
	var specials []special
	for nr := lo; nr < lo+32; nr++ {
		v, ok := s[nr]
		if !ok {
			v = verdict{fallback: c.def}
		}
		if !v.simple() {
			specials = append(specials, special{nr, v})
			continue
		}
		if count[v.fallback] == 0 {
			acts = append(acts, v.fallback)
		}
		count[v.fallback]++
	}
	// The commonest action is the clear bit, the next one the set bit.
	slices.SortStableFunc(acts, func(x, y uint32) int { return count[y] - count[x] })
	if len(specials) == 0 && len(acts) == 1 {
		return leaf{lo: lo, hi: lo + 31, run: true, action: acts[0]}
	}
	l := leaf{lo: lo, hi: lo + 31, clr: acts[0], set: acts[0]}
	if len(acts) > 1 {
		l.set = acts[1]
	}
	specials = specials[:0]
	for nr := lo; nr < lo+32; nr++ {
		v, ok := s[nr]
		if !ok {
			v = verdict{fallback: c.def}
		}
		switch {
		case !v.simple():
			specials = append(specials, special{nr, v})
		case v.fallback == l.set && l.set != l.clr:
			l.mask |= 1 << (nr % 32)
		case v.fallback != l.clr:
			specials = append(specials, special{nr, v})
		}
	}
	l.specials = specials
	return l
}

// root emits the search over ls, A = the relative syscall number.
func (c *compiler) root(ls []leaf, bits int) {
	if len(ls) == 1 && ls[0].run {
		c.a.ret(ls[0].action)
		return
	}
	if len(ls) == 1 && ls[0].rules != nil {
		c.a.emit(&insn{op: opJa, ja: c.rulesLabel(*ls[0].rules, bits)})
		return
	}
	at := c.a.newLabel()
	c.tree(ls, at, bits)
}

func (c *compiler) labelFor(ls []leaf, bits int) *label {
	if len(ls) == 1 && ls[0].run {
		return c.ret(ls[0].action)
	}
	if len(ls) == 1 && ls[0].rules != nil {
		return c.rulesLabel(*ls[0].rules, bits)
	}
	return c.a.newLabel()
}

// rulesLabel returns the label of v's argument checks, laid out later
// (once per group for equal verdicts: x86_64's and x32's ioctl).
func (c *compiler) rulesLabel(v verdict, bits int) *label {
	key := strconv.Itoa(bits) + ":" + strconv.FormatUint(uint64(v.fallback), 16)
	for _, r := range v.rules {
		key += ";" + strconv.FormatUint(uint64(r.action), 16)
		for _, cd := range r.conds {
			key += fmt.Sprintf(",%d%s%x/%x", cd.arg, cd.op, cd.v, cd.v2)
		}
	}
	if l, ok := c.shared[key]; ok {
		return l
	}
	l := c.a.newLabel()
	c.shared[key] = l
	c.deferred = append(c.deferred, func() error { return c.rules(v, bits, l) })
	return l
}

// tree emits the binary search over ls starting at at (a return label for a
// single run, emitted with the pool).
func (c *compiler) tree(ls []leaf, at *label, bits int) {
	a := &c.a
	if len(ls) == 1 {
		if ls[0].run || ls[0].rules != nil {
			return // at is a pool or rules label
		}
		a.bind(at)
		c.bitmap(ls[0], bits)
		return
	}
	a.bind(at)
	mid := len(ls) / 2
	lower, upper := c.labelFor(ls[:mid], bits), c.labelFor(ls[mid:], bits)
	a.jump(opJge, ls[mid].lo, upper, lower)
	c.tree(ls[:mid], lower, bits)
	c.tree(ls[mid:], upper, bits)
}

// bitmap emits a block leaf: its special numbers first, then the bit test.
func (c *compiler) bitmap(l leaf, bits int) {
	a := &c.a
	for i, sp := range l.specials {
		target := c.ret(sp.v.fallback)
		if !sp.v.simple() {
			target = c.rulesLabel(sp.v, bits)
		}
		if l.mask == 0 && i == len(l.specials)-1 {
			a.jump(opJeq, sp.nr, target, c.ret(l.clr))
			return
		}
		next := a.newLabel()
		a.jump(opJeq, sp.nr, target, next)
		a.bind(next)
	}
	if l.mask == 0 {
		a.emit(&insn{op: opJa, ja: c.ret(l.clr)})
		return
	}
	a.op(opLdMem, bitSlot)
	a.jump(opJset, l.mask, c.ret(l.set), c.ret(l.clr))
}

// valueSet is a condition "argument's low half in ranges", with the high
// half required to be 0 (hiZero) or not looked at.
type valueSet struct {
	arg    uint
	hiZero bool
	ranges [][2]uint32
}

// asSet recognises the comparisons that are set membership on the low half.
func asSet(cd cond, bits int) (valueSet, bool) {
	vs := valueSet{arg: cd.arg, hiZero: bits == 64}
	switch {
	case cd.op == opEqualTo && cd.v>>32 == 0:
		vs.ranges = [][2]uint32{{uint32(cd.v), uint32(cd.v)}}
	case cd.op == opLessThan && cd.v >= 1 && cd.v <= 1<<32:
		vs.ranges = [][2]uint32{{0, uint32(cd.v - 1)}}
	case cd.op == opLessEqual && cd.v>>32 == 0:
		vs.ranges = [][2]uint32{{0, uint32(cd.v)}}
	case cd.op == opMaskedEqual && cd.v == 0xffffffff && cd.v2>>32 == 0:
		vs.hiZero = false
		vs.ranges = [][2]uint32{{uint32(cd.v2), uint32(cd.v2)}}
	default:
		return vs, false
	}
	return vs, true
}

// rules emits v's argument checks at at; every path ends in a pool return.
func (c *compiler) rules(v verdict, bits int, at *label) error {
	a := &c.a
	a.bind(at)
	type grp struct {
		action uint32
		set    *valueSet
		conds  []cond
	}
	var groups []grp
	for _, r := range v.rules {
		if len(r.conds) == 1 {
			if vs, ok := asSet(r.conds[0], bits); ok {
				if n := len(groups); n > 0 {
					g := &groups[n-1]
					if g.set != nil && g.action == r.action && g.set.arg == vs.arg && g.set.hiZero == vs.hiZero {
						g.set.ranges = append(g.set.ranges, vs.ranges...)
						continue
					}
				}
				groups = append(groups, grp{action: r.action, set: &vs})
				continue
			}
		}
		groups = append(groups, grp{action: r.action, conds: r.conds})
	}
	for i, g := range groups {
		fail := c.ret(v.fallback)
		if i+1 < len(groups) {
			fail = a.newLabel()
		}
		pass := c.ret(g.action)
		if g.set != nil {
			if err := c.set(*g.set, bits, pass, fail); err != nil {
				return err
			}
		} else {
			for j, cd := range g.conds {
				next := pass
				if j+1 < len(g.conds) {
					next = a.newLabel()
				}
				if err := c.cond(cd, bits, next, fail); err != nil {
					return err
				}
				if next != pass {
					a.bind(next)
				}
			}
		}
		if i+1 < len(groups) {
			a.bind(fail)
		}
	}
	return nil
}

// set emits a membership test: small values by bitmap, others by compares.
func (c *compiler) set(vs valueSet, bits int, pass, fail *label) error {
	a := &c.a
	lo := uint32(offArgs + 8*vs.arg)
	if bits == 64 && vs.hiZero {
		cont := a.newLabel()
		a.load(lo + 4)
		a.jump(opJeq, 0, cont, fail)
		a.bind(cont)
	}
	a.load(lo)
	slices.SortFunc(vs.ranges, func(x, y [2]uint32) int { return int(int64(x[0]) - int64(y[0])) })
	var m [2]uint32
	small := true
	for _, r := range vs.ranges {
		if r[1] >= 64 {
			small = false
			break
		}
		for x := r[0]; x <= r[1]; x++ {
			m[x/32] |= 1 << (x % 32)
		}
	}
	if small && len(vs.ranges) > 3 {
		limit := uint32(64)
		if m[1] == 0 {
			limit = 32
		}
		inRange := a.newLabel()
		a.jump(opJge, limit, fail, inRange)
		a.bind(inRange)
		if m[1] == 0 {
			a.bit()
			a.jump(opJset, m[0], pass, fail)
			return nil
		}
		high, low := a.newLabel(), a.newLabel()
		a.jump(opJge, 32, high, low)
		a.bind(low)
		a.bit()
		a.jump(opJset, m[0], pass, fail)
		a.bind(high)
		a.bit() // and 31 takes 32 off
		a.jump(opJset, m[1], pass, fail)
		return nil
	}
	for i, r := range vs.ranges {
		next := fail
		if i+1 < len(vs.ranges) {
			next = a.newLabel()
		}
		switch {
		case r[0] == r[1]:
			a.jump(opJeq, r[0], pass, next)
		case r[0] == 0:
			a.jump(opJgt, r[1], next, pass)
		default:
			cont := a.newLabel()
			a.jump(opJge, r[0], cont, next)
			a.bind(cont)
			a.jump(opJgt, r[1], next, pass)
		}
		if next != fail {
			a.bind(next)
		}
	}
	return nil
}

// cond emits one comparison, jumping to pass when cd holds and to fail when
// it does not. On a 32-bit ABI only the low halves are compared, and a value
// that does not fit in them is an error.
func (c *compiler) cond(cd cond, bits int, pass, fail *label) error {
	a := &c.a
	lo := uint32(offArgs + 8*cd.arg)
	hi := lo + 4
	v, v2 := cd.v, cd.v2
	if bits == 32 {
		if v>>32 != 0 || v2>>32 != 0 {
			return fmt.Errorf("argument %d: value %#x does not fit a 32-bit ABI", cd.arg, v)
		}
	}
	wide := bits == 64
	vl, vh := uint32(v), uint32(v>>32)
	step := a.newLabel
	switch cd.op {
	case opEqualTo:
		if wide {
			cont := step()
			a.load(hi)
			a.jump(opJeq, vh, cont, fail)
			a.bind(cont)
		}
		a.load(lo)
		a.jump(opJeq, vl, pass, fail)
	case opNotEqual:
		if wide {
			cont := step()
			a.load(hi)
			a.jump(opJeq, vh, cont, pass)
			a.bind(cont)
		}
		a.load(lo)
		a.jump(opJeq, vl, fail, pass)
	case opGreaterThan, opGreaterEqual:
		if wide {
			eq, cont := step(), step()
			a.load(hi)
			a.jump(opJgt, vh, pass, eq)
			a.bind(eq)
			a.jump(opJeq, vh, cont, fail)
			a.bind(cont)
		}
		op := uint16(opJgt)
		if cd.op == opGreaterEqual {
			op = opJge
		}
		a.load(lo)
		a.jump(op, vl, pass, fail)
	case opLessThan, opLessEqual:
		if wide {
			eq, cont := step(), step()
			a.load(hi)
			a.jump(opJgt, vh, fail, eq)
			a.bind(eq)
			a.jump(opJeq, vh, cont, pass)
			a.bind(cont)
		}
		// A < v is !(A >= v); A <= v is !(A > v).
		op := uint16(opJge)
		if cd.op == opLessEqual {
			op = opJgt
		}
		a.load(lo)
		a.jump(op, vl, fail, pass)
	case opMaskedEqual:
		ml, mh := uint32(v), uint32(v>>32)
		wl, wh := uint32(v2), uint32(v2>>32)
		if wide && (mh != 0 || wh != 0) {
			cont := step()
			a.load(hi)
			a.and(mh)
			a.jump(opJeq, wh, cont, fail)
			a.bind(cont)
		}
		a.load(lo)
		if ml != 0xffffffff {
			a.and(ml)
		}
		a.jump(opJeq, wl, pass, fail)
	default:
		return fmt.Errorf("operator %q is not supported", cd.op)
	}
	return nil
}
