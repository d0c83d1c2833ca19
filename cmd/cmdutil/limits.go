package cmdutil

import (
	"strconv"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/spf13/pflag"
)

// AddLimitFlags binds the resource-limit flags (--memory, --memory-swap,
// --cpus, --cpu-weight, --pids-limit, --io-weight) to l. Values are parsed
// when the flag is set, so a malformed one fails before anything runs, with
// a hint (a FlagError, exit 125).
func AddLimitFlags(fs *pflag.FlagSet, l *cgroup.Limits) {
	fs.Var(&limitValue{kind: "size", set: func(s string) error { return setParsed(&l.Memory, s, cgroup.ParseSize) }, get: func() string { return sizeString(l.Memory) }},
		"memory", "memory limit (memory.max), e.g. 512m, 1g or 1.5GiB")
	fs.Var(&limitValue{kind: "size", set: func(s string) error { return setParsed(&l.MemorySwap, s, cgroup.ParseMemorySwap) }, get: func() string { return sizeString(l.MemorySwap) }},
		"memory-swap", "memory plus swap limit (needs --memory; -1: unlimited swap)")
	fs.Var(&limitValue{kind: "n", set: func(s string) error { return setParsed(&l.CPUs, s, cgroup.ParseCPUs) }, get: func() string { return floatString(l.CPUs) }},
		"cpus", "CPU bandwidth in CPUs (cpu.max), e.g. 0.5 or 2")
	fs.Var(&limitValue{kind: "weight", set: func(s string) error { return setParsed(&l.CPUWeight, s, cgroup.ParseWeight) }, get: func() string { return uintString(l.CPUWeight) }},
		"cpu-weight", "relative CPU share (cpu.weight), 1-10000, default 100")
	fs.Var(&limitValue{kind: "n", set: func(s string) error { return setParsed(&l.PidsLimit, s, cgroup.ParsePids) }, get: func() string { return intString(l.PidsLimit) }},
		"pids-limit", "most processes and threads the box may have (pids.max)")
	fs.Var(&limitValue{kind: "weight", set: func(s string) error { return setParsed(&l.IOWeight, s, cgroup.ParseWeight) }, get: func() string { return uintString(l.IOWeight) }},
		"io-weight", "relative block I/O share (io.weight), 1-10000, default 100")
}

// limitValue is a pflag.Value that parses as it is set.
type limitValue struct {
	kind string
	set  func(string) error
	get  func() string
}

func (v *limitValue) String() string     { return v.get() }
func (v *limitValue) Set(s string) error { return v.set(s) }
func (v *limitValue) Type() string       { return v.kind }

func setParsed[T any](dst *T, s string, parse func(string) (T, error)) error {
	v, err := parse(s)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

func sizeString(v int64) string {
	switch {
	case v == 0:
		return ""
	case v < 0:
		return "-1"
	}
	return cgroup.FormatSize(v)
}

func floatString(v float64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func uintString(v uint64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatUint(v, 10)
}

func intString(v int64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatInt(v, 10)
}
