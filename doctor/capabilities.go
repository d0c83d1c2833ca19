package doctor

import (
	"github.com/devbox-dev/devbox/rootless"
)

// IDRange is a run of subordinate ids.
type IDRange struct {
	Start  int `json:"start"`
	Length int `json:"length"`
}

// Capabilities summarises what the host offers devbox, from its settings
// only (nothing is tried; devbox doctor tries). Its JSON form is part of
// `devbox version --json` (docs/json.md).
type Capabilities struct {
	Kernel string `json:"kernel"`
	// Userns is "allowed", "disabled" or "restricted" (AppArmor).
	Userns string    `json:"userns"`
	SubUID []IDRange `json:"subuid"` // empty: only the caller's own id is mapped
	SubGID []IDRange `json:"subgid"`
	// NewUIDMap is the path of newuidmap, "" when it is missing.
	NewUIDMap string `json:"newuidmap"`
	// Overlay is how boxes get their root filesystem: "kernel" (overlayfs
	// in a user namespace, Linux 5.11+), "fuse-overlayfs" or "copy".
	Overlay string `json:"overlay"`
	// Cgroup is "v2", "hybrid", "v1" or "none"; CgroupControllers are the
	// controllers delegated to the caller (v2 only).
	Cgroup            string   `json:"cgroup"`
	CgroupControllers []string `json:"cgroupControllers"`
	// Network lists the network helpers found: "pasta", "slirp4netns".
	Network []string `json:"network"`
}

// Detect reads the host's capabilities.
func Detect(e Env) Capabilities {
	r := &runner{Env: e}
	c := Capabilities{
		Kernel:            r.readTrim("/proc/sys/kernel/osrelease"),
		Userns:            "allowed",
		SubUID:            ranges(e.Mapping.SubUIDs),
		SubGID:            ranges(e.Mapping.SubGIDs),
		CgroupControllers: []string{},
		Network:           []string{},
	}
	switch {
	case r.readTrim(sysctlMaxUserns) == "0", r.readTrim(sysctlCloneUserns) == "0":
		c.Userns = "disabled"
	case r.readTrim(sysctlAppArmor) == "1":
		c.Userns = "restricted"
	}
	if p, err := e.Host.LookPath("newuidmap"); err == nil {
		c.NewUIDMap = p
	}
	_, fuseErr := e.Host.LookPath("fuse-overlayfs")
	switch {
	case kernelAtLeast(c.Kernel, 5, 11):
		c.Overlay = "kernel"
	case fuseErr == nil:
		c.Overlay = "fuse-overlayfs"
	default:
		c.Overlay = "copy"
	}
	var ctrls []string
	c.Cgroup, _, _, ctrls = r.cgroupInfo()
	if ctrls != nil {
		c.CgroupControllers = ctrls
	}
	for _, h := range []string{"pasta", "slirp4netns"} {
		if _, err := e.Host.LookPath(h); err == nil {
			c.Network = append(c.Network, h)
		}
	}
	return c
}

func ranges(rs []rootless.Range) []IDRange {
	out := make([]IDRange, len(rs))
	for i, r := range rs {
		out[i] = IDRange{r.Start, r.Length}
	}
	return out
}
