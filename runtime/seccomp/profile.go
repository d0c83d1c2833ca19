package seccomp

// profile is a seccomp profile in the shape of moby's (Docker's) profile
// format, reduced to what the compiler reads. The default profile is kept as
// a generated table (zprofile.go, from github.com/moby/profiles/seccomp's
// DefaultProfile; a test keeps it equal), so that the box init links neither
// moby's package nor the runtime spec's, and builds nothing at start-up.
type profile struct {
	defaultAction string
	defaultErrno  int // -1: not given (EPERM)
	archMap       []archEntry
	rules         []profileRule
}

// archEntry is a native architecture and its sub-architectures.
type archEntry struct {
	arch      string
	subArches []string
}

// profileRule is one entry of the profile's syscalls list.
type profileRule struct {
	names            []string
	action           string
	errno            int // -1: not given (EPERM)
	args             []profileArg
	include, exclude filter
}

// profileArg is an argument comparison; for maskedEqual, value is the mask.
type profileArg struct {
	index           uint
	value, valueTwo uint64
	op              string
}

// filter is a rule's includes or excludes.
type filter struct {
	caps, arches []string
	minKernel    bool // a minimum kernel is named (always reached here)
}

// The runtime spec's names of actions and comparisons.
const (
	actAllow       = "SCMP_ACT_ALLOW"
	actErrno       = "SCMP_ACT_ERRNO"
	actKill        = "SCMP_ACT_KILL"
	actKillThread  = "SCMP_ACT_KILL_THREAD"
	actKillProcess = "SCMP_ACT_KILL_PROCESS"
	actTrap        = "SCMP_ACT_TRAP"
	actTrace       = "SCMP_ACT_TRACE"
	actLog         = "SCMP_ACT_LOG"

	opEqualTo      = "SCMP_CMP_EQ"
	opNotEqual     = "SCMP_CMP_NE"
	opGreaterThan  = "SCMP_CMP_GT"
	opGreaterEqual = "SCMP_CMP_GE"
	opLessThan     = "SCMP_CMP_LT"
	opLessEqual    = "SCMP_CMP_LE"
	opMaskedEqual  = "SCMP_CMP_MASKED_EQ"
)
