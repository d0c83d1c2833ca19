package box

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/network"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// CheckExisting refuses create flags given to shell for the existing box
// r when they ask for something else than r has: nothing about a box
// changes silently. A flag that repeats what r has (devbox shell dev
// --image fedora, run again) is fine. The hint is the command that would
// do what was asked.
func (m *Manager) CheckExisting(r *rbox.Record, o CreateOptions, changed []string, given map[string][]string) error {
	var differ, again []string
	for _, name := range changed {
		if !m.sameAsRecord(r, o, name) {
			differ = append(differ, "--"+name)
			again = append(again, given[name]...)
		}
	}
	if len(differ) == 0 {
		return nil
	}
	var all []string
	for _, name := range changed {
		all = append(all, given[name]...)
	}
	hint := fmt.Sprintf("devbox rm %s && devbox create %s %s makes it anew, without what was installed in it", r.Name, r.Name, strings.Join(all, " "))
	limitsOnly := true
	for _, d := range differ {
		switch d {
		case "--memory", "--memory-swap", "--cpus", "--cpu-weight", "--pids-limit", "--io-weight":
		default:
			limitsOnly = false
		}
	}
	if limitsOnly {
		hint = fmt.Sprintf("devbox update %s %s changes the box's limits, at once when it runs", r.Name, strings.Join(again, " "))
	}
	return fmt.Errorf("box %s already exists; %s would only shape a new box, so nothing was run (hint: %s; or drop %s to enter it as it is)",
		r.Name, strings.Join(again, " "), hint, strings.Join(differ, ", "))
}

// sameAsRecord reports whether create flag name, as given in o, asks for
// what box r already has.
func (m *Manager) sameAsRecord(r *rbox.Record, o CreateOptions, name string) bool {
	switch name {
	case "image":
		if o.Image == r.Image {
			return true
		}
		tab, err := m.aliases()
		if err != nil {
			return false
		}
		named, _, err := image.Resolve(o.Image, tab)
		return err == nil && image.FullName(named) == r.Image
	case "home":
		abs, err := filepath.Abs(o.Home)
		return err == nil && (abs == r.Home || (r.Home == "" && abs == userHome()))
	case "desktop":
		return o.Desktop == r.Desktop
	case "audio":
		return o.Audio == r.Audio
	case "volume":
		var want []rbox.Volume
		for _, s := range o.Volumes {
			v, err := ParseVolume(s)
			if err != nil {
				return false
			}
			want = append(want, v)
		}
		return slices.EqualFunc(want, r.Volumes, func(a, b rbox.Volume) bool {
			return a.Source == b.Source && a.Target == b.Target && a.ReadOnly == b.ReadOnly
		})
	case "env":
		for _, kv := range o.Env {
			if !slices.Contains(r.Env, kv) {
				return false
			}
		}
		return true
	case "hostname":
		return o.Hostname == r.Hostname
	case "grace":
		return o.Grace == r.Grace || (o.Grace == rbox.DefaultGrace && r.Grace == 0)
	case "cap-add":
		return slices.Equal(o.CapAdd, r.CapAdd)
	case "cap-drop":
		return slices.Equal(o.CapDrop, r.CapDrop)
	case "security-opt":
		return slices.Equal(o.SecurityOpt, r.SecurityOpt)
	case "net":
		return network.Canonical(o.Net) == r.Net
	case "publish":
		return slices.Equal(o.Publish, r.Publish)
	case "no-auto-ports":
		return o.NoAutoPorts == r.NoAutoPorts
	case "host-loopback":
		return o.HostLoopback == !r.NoHostLoopback
	case "no-host-loopback":
		return o.NoHostLoopback == r.NoHostLoopback
	case "memory":
		return o.Limits.Memory == r.Limits.Memory
	case "memory-swap":
		return o.Limits.MemorySwap == r.Limits.MemorySwap
	case "cpus":
		return o.Limits.CPUs == r.Limits.CPUs
	case "cpu-weight":
		return o.Limits.CPUWeight == r.Limits.CPUWeight
	case "pids-limit":
		return o.Limits.PidsLimit == r.Limits.PidsLimit
	case "io-weight":
		return o.Limits.IOWeight == r.Limits.IOWeight
	}
	return false
}
