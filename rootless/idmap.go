package rootless

import (
	"strconv"
	"syscall"

	"github.com/devbox-dev/devbox/rootless/idmap"
)

// Mapping and Range are idmap's: the caller and its subordinate ids.
type (
	Mapping = idmap.Mapping
	Range   = idmap.Range
)

// Detect looks up the caller's subordinate id ranges (idmap.Detect).
func Detect() (Mapping, error) { return idmap.Detect() }

// keepIDMaps is idmap.KeepIDMaps.
func keepIDMaps(own int, subs []Range) []syscall.SysProcIDMap { return idmap.KeepIDMaps(own, subs) }

// mapArgs renders a map as newuidmap/newgidmap arguments after the pid.
func mapArgs(m []syscall.SysProcIDMap) []string {
	args := make([]string, 0, 3*len(m))
	for _, e := range m {
		args = append(args, strconv.Itoa(e.ContainerID), strconv.Itoa(e.HostID), strconv.Itoa(e.Size))
	}
	return args
}
