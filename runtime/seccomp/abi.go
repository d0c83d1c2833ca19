package seccomp

import "sort"

// The columns of sysTable.
const (
	abiX86_64 = iota
	abiI386
	abiX32
	abiAArch64
	abiARM
	numABIs
)

// Audit architecture values (linux/audit.h) seen in seccomp_data.arch.
const (
	auditArchX86_64  = 0xc000003e
	auditArchI386    = 0x40000003
	auditArchAArch64 = 0xc00000b7
	auditArchARM     = 0x40000028
)

// x32SyscallBit marks x32 syscall numbers (they share x86_64's audit arch).
const x32SyscallBit = 0x40000000

// sysEntry is one row of sysTable.
type sysEntry struct {
	name string
	nr   [numABIs]int32
}

// abi is one way into the kernel that a filter has to cover.
type abi struct {
	column  int    // sysTable column
	scmp    string // the profile's (libseccomp's) name, e.g. "SCMP_ARCH_X86_64"
	audit   uint32 // seccomp_data.arch
	nrBase  uint32 // added to the table's numbers (x32)
	argBits int    // 64: compare whole arguments; 32: low halves only
}

// abiTable lists the ABIs this package knows (static data: nothing to build
// at start-up, which is on the box init's critical path).
var abiTable = [...]abi{
	{column: abiX86_64, scmp: "SCMP_ARCH_X86_64", audit: auditArchX86_64, argBits: 64},
	{column: abiI386, scmp: "SCMP_ARCH_X86", audit: auditArchI386, argBits: 32},
	{column: abiX32, scmp: "SCMP_ARCH_X32", audit: auditArchX86_64, nrBase: x32SyscallBit, argBits: 64},
	{column: abiAArch64, scmp: "SCMP_ARCH_AARCH64", audit: auditArchAArch64, argBits: 64},
	{column: abiARM, scmp: "SCMP_ARCH_ARM", audit: auditArchARM, argBits: 32},
}

// abiNamed returns the ABI the profile calls name (e.g. "SCMP_ARCH_X86").
func abiNamed(name string) (*abi, bool) {
	for i := range abiTable {
		if abiTable[i].scmp == name {
			return &abiTable[i], true
		}
	}
	return nil, false
}

// target is a host architecture: its name in the profile's include/exclude
// filters and its native ABI.
type target struct {
	native string // the profile's name for it ("amd64", "arm64")
	scmp   string // native ABI
}

// targetFor returns the host architecture GOARCH goarch.
func targetFor(goarch string) (target, bool) {
	switch goarch {
	case "amd64":
		return target{native: "amd64", scmp: "SCMP_ARCH_X86_64"}, true
	case "arm64":
		return target{native: "arm64", scmp: "SCMP_ARCH_AARCH64"}, true
	}
	return target{}, false
}

// lookup returns name's number on a, including a.nrBase.
func (a *abi) lookup(name string) (uint32, bool) {
	i := sort.Search(len(sysTable), func(i int) bool { return sysTable[i].name >= name })
	if i == len(sysTable) || sysTable[i].name != name {
		return 0, false
	}
	nr := sysTable[i].nr[a.column]
	if nr < 0 {
		return 0, false
	}
	return uint32(nr) + a.nrBase, true
}
