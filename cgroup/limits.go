package cgroup

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// Limits are the resource limits of a box. The zero value of each field
// means "not set": the box inherits its parent's limit.
type Limits struct {
	// Memory is memory.max in bytes.
	Memory int64
	// MemorySwap is memory plus swap in bytes (Docker's --memory-swap);
	// memory.swap.max is MemorySwap-Memory. -1 means unlimited swap. It
	// needs Memory.
	MemorySwap int64
	// CPUs is the CPU bandwidth in CPUs (0.5 = half of one CPU), written
	// as cpu.max "quota period" with a 100 ms period.
	CPUs float64
	// CPUWeight is cpu.weight, 1..10000 (default 100).
	CPUWeight uint64
	// PidsLimit is pids.max: the most tasks the box may have at once.
	PidsLimit int64
	// IOWeight is io.weight (io.bfq.weight with BFQ), 1..10000.
	IOWeight uint64
}

// cpuPeriod is the cpu.max period in microseconds.
const cpuPeriod = 100000

// MinMemory is the smallest --memory a box can start with: the box init
// alone needs a few megabytes.
const MinMemory = 6 << 20

// Any reports whether any limit is set.
func (l Limits) Any() bool { return l != Limits{} }

// Flags returns the command-line flags of the limits that are set, for
// messages.
func (l Limits) Flags() []string {
	var f []string
	add := func(set bool, name string) {
		if set {
			f = append(f, "--"+name)
		}
	}
	add(l.Memory != 0, "memory")
	add(l.MemorySwap != 0, "memory-swap")
	add(l.CPUs != 0, "cpus")
	add(l.CPUWeight != 0, "cpu-weight")
	add(l.PidsLimit != 0, "pids-limit")
	add(l.IOWeight != 0, "io-weight")
	return f
}

// Controllers returns the cgroup v2 controllers the set limits need, in the
// order memory, cpu, pids, io.
func (l Limits) Controllers() []string {
	var c []string
	if l.Memory != 0 || l.MemorySwap != 0 {
		c = append(c, "memory")
	}
	if l.CPUs != 0 || l.CPUWeight != 0 {
		c = append(c, "cpu")
	}
	if l.PidsLimit != 0 {
		c = append(c, "pids")
	}
	if l.IOWeight != 0 {
		c = append(c, "io")
	}
	return c
}

// flagsFor returns the flags that need controller c.
func (l Limits) flagsFor(c string) []string {
	var out []string
	for _, f := range l.Flags() {
		switch {
		case c == "memory" && strings.HasPrefix(f, "--memory"),
			c == "cpu" && strings.HasPrefix(f, "--cpu"),
			c == "pids" && f == "--pids-limit",
			c == "io" && f == "--io-weight":
			out = append(out, f)
		}
	}
	return out
}

// Validate checks the combination of limits; each value was already
// checked when it was parsed.
func (l Limits) Validate() error {
	if l.Memory != 0 && l.Memory < MinMemory {
		return fmt.Errorf("--memory %s is too small to start a box (hint: use at least %s)", FormatSize(l.Memory), FormatSize(MinMemory))
	}
	if l.MemorySwap != 0 {
		if l.Memory == 0 {
			return errors.New("--memory-swap needs --memory (hint: --memory-swap is memory plus swap, e.g. --memory 512m --memory-swap 1g)")
		}
		if l.MemorySwap > 0 && l.MemorySwap < l.Memory {
			return fmt.Errorf("--memory-swap %s is less than --memory %s (hint: --memory-swap is memory plus swap, so it must be at least --memory; -1 allows unlimited swap)",
				FormatSize(l.MemorySwap), FormatSize(l.Memory))
		}
	}
	return nil
}

// Resources converts the limits to containerd's cgroup v2 resources. The
// I/O weight is not included: it is written by Box.Update, which picks the
// file the kernel offers.
func (l Limits) Resources() *cgroup2.Resources {
	r := &cgroup2.Resources{}
	if l.Memory != 0 {
		m := l.Memory
		r.Memory = &cgroup2.Memory{Max: &m}
		if l.MemorySwap != 0 {
			// -1 (unlimited) is written as "max" by Box.Update.
			if l.MemorySwap > 0 {
				swap := l.MemorySwap - l.Memory
				r.Memory.Swap = &swap
			}
		}
	}
	if l.CPUs != 0 || l.CPUWeight != 0 {
		r.CPU = &cgroup2.CPU{}
		if l.CPUs != 0 {
			quota := int64(math.Round(l.CPUs * cpuPeriod))
			period := uint64(cpuPeriod)
			r.CPU.Max = cgroup2.NewCPUMax(&quota, &period)
		}
		if l.CPUWeight != 0 {
			w := l.CPUWeight
			r.CPU.Weight = &w
		}
	}
	if l.PidsLimit != 0 {
		r.Pids = &cgroup2.Pids{Max: l.PidsLimit}
	}
	return r
}

// ParseSize parses a size in bytes: a number, optionally fractional, with
// an optional binary unit: b, k/kb/kib, m/mb/mib, g/gb/gib, t/tb/tib (any
// case; all units are powers of 1024, as for docker and podman). Examples:
// 1048576, 512m, 1g, 1.5GiB.
func ParseSize(s string) (int64, error) {
	in := strings.TrimSpace(s)
	i := 0
	for i < len(in) && (in[i] >= '0' && in[i] <= '9' || in[i] == '.') {
		i++
	}
	num, unit := in[:i], strings.ToLower(strings.TrimSpace(in[i:]))
	var mult float64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	case "t", "tb", "tib":
		mult = 1 << 40
	default:
		return 0, sizeError(s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.Count(num, ".") > 1 {
		return 0, sizeError(s)
	}
	b := v * mult
	if b < 1 || b >= math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q: out of range (hint: use a positive size such as 512m, 1g or 1.5GiB)", s)
	}
	return int64(b), nil
}

func sizeError(s string) error {
	return fmt.Errorf("invalid size %q (hint: use a number with an optional unit b, k, m, g or t, e.g. 512m, 1g or 1.5GiB)", s)
}

// FormatSize formats bytes with the largest binary unit that keeps one
// decimal: 512MiB, 1.5GiB, 900B.
func FormatSize(b int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v := float64(b)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", b)
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + units[i]
}

// ParseCPUs parses a CPU count for cpu.max: a positive decimal number of
// CPUs, at least 0.01 (the kernel's smallest quota is 1 ms per 100 ms).
func ParseCPUs(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid CPU count %q (hint: use a decimal number of CPUs, e.g. 0.5 for half a CPU or 2)", s)
	}
	if v < 0.01 || v > 4096 {
		return 0, fmt.Errorf("invalid CPU count %q: must be between 0.01 and 4096 (hint: e.g. 0.5 for half a CPU)", s)
	}
	return v, nil
}

// ParseWeight parses a cpu or io weight, 1..10000.
func ParseWeight(s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 1 || v > 10000 {
		return 0, fmt.Errorf("invalid weight %q (hint: use a whole number from 1 to 10000; the default weight is 100)", s)
	}
	return v, nil
}

// ParsePids parses a pids limit: a whole number of at least 1.
func ParsePids(s string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("invalid pids limit %q (hint: use a whole number of processes and threads, e.g. 512)", s)
	}
	return v, nil
}

// ParseMemorySwap parses --memory-swap: a size, or -1 for unlimited swap.
func ParseMemorySwap(s string) (int64, error) {
	if strings.TrimSpace(s) == "-1" {
		return -1, nil
	}
	return ParseSize(s)
}

// Over returns l with every limit that is set in n replaced by n's: the
// limits a box keeps after devbox update n.
func (l Limits) Over(n Limits) Limits {
	if n.Memory != 0 {
		l.Memory = n.Memory
	}
	if n.MemorySwap != 0 {
		l.MemorySwap = n.MemorySwap
	}
	if n.CPUs != 0 {
		l.CPUs = n.CPUs
	}
	if n.CPUWeight != 0 {
		l.CPUWeight = n.CPUWeight
	}
	if n.PidsLimit != 0 {
		l.PidsLimit = n.PidsLimit
	}
	if n.IOWeight != 0 {
		l.IOWeight = n.IOWeight
	}
	return l
}
