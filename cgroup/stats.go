package cgroup

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// Stats are a box's resource usage and limits at one moment. A nil limit
// means unlimited.
type Stats struct {
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
}

// CPUStats come from cpu.stat and cpu.max.
type CPUStats struct {
	UsageUsec  uint64   `json:"usageUsec"`  // cpu.stat usage_usec: CPU time used so far
	UserUsec   uint64   `json:"userUsec"`   // cpu.stat user_usec
	SystemUsec uint64   `json:"systemUsec"` // cpu.stat system_usec
	Throttled  uint64   `json:"throttledUsec"`
	Limit      *float64 `json:"limit"` // cpu.max quota/period in CPUs
}

// MemoryStats come from memory.current, memory.max, memory.peak and
// memory.events.
type MemoryStats struct {
	Current  uint64  `json:"current"`
	Limit    *uint64 `json:"limit"`
	Peak     uint64  `json:"peak,omitempty"`
	Swap     uint64  `json:"swap"`
	OOMKills uint64  `json:"oomKills"`
}

// PidsStats come from pids.current and pids.max.
type PidsStats struct {
	Current uint64  `json:"current"`
	Limit   *uint64 `json:"limit"`
}

// Stat reads the box's usage.
func (b *Box) Stat() (Stats, error) {
	m, err := b.m.StatFiltered(cgroup2.StatPids | cgroup2.StatCPU | cgroup2.StatMemory | cgroup2.StatMemoryEvents)
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	limit := func(v uint64) *uint64 {
		if v == 0 || v == math.MaxUint64 {
			return nil
		}
		return &v
	}
	if m.CPU != nil {
		s.CPU = CPUStats{UsageUsec: m.CPU.UsageUsec, UserUsec: m.CPU.UserUsec, SystemUsec: m.CPU.SystemUsec, Throttled: m.CPU.ThrottledUsec}
	}
	if q, p, ok := readCPUMax(filepath.Join(b.Root, b.Path, "cpu.max")); ok {
		cpus := float64(q) / float64(p)
		s.CPU.Limit = &cpus
	}
	if m.Memory != nil {
		s.Memory = MemoryStats{Current: m.Memory.Usage, Limit: limit(m.Memory.UsageLimit), Peak: m.Memory.MaxUsage, Swap: m.Memory.SwapUsage}
	}
	if m.MemoryEvents != nil {
		s.Memory.OOMKills = m.MemoryEvents.OomKill
	}
	if m.Pids != nil {
		s.Pids = PidsStats{Current: m.Pids.Current, Limit: limit(m.Pids.Limit)}
	}
	return s, nil
}

// readCPUMax parses cpu.max ("quota period" or "max period").
func readCPUMax(p string) (quota, period uint64, ok bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0, 0, false
	}
	q, err1 := strconv.ParseUint(f[0], 10, 64)
	per, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil || per == 0 {
		return 0, 0, false
	}
	return q, per, true
}
