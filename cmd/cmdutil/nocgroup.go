package cmdutil

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/image/store"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// CgroupsUnusable says why boxes on this host get no cgroup (no cgroup v2,
// no delegation, …) with the fix, as run --memory does; nil when they
// get one.
func CgroupsUnusable() error {
	_, err := cgroup.Decide(cgroup.DetectHost(), cgroup.Limits{PidsLimit: 1 << 20})
	var le *cgroup.LimitError
	if errors.As(err, &le) {
		msg := "boxes on this host have no cgroup, so no limits and no usage figures: " + le.Reason
		if le.Hint != "" {
			msg += " (hint: " + le.Hint + ")"
		}
		return errors.New(msg)
	}
	return nil
}

// ExplainNoCgroup says why ref (a box name, a box id prefix or a run's id
// prefix) is not among the boxes with a cgroup (CgroupBoxes): there is no
// such box, it is not running, or it runs without a cgroup (and why).
func ExplainNoCgroup(st *store.Store, ref string) error {
	bs, err := rbox.Open(st.ContainersDir(), filepath.Join(st.Root, "locks"))
	if err != nil {
		return err
	}
	r, ferr := bs.Find(ref)
	id := ""
	switch {
	case ferr == nil:
		id = r.ID
	case len(ref) >= 4:
		for _, run := range st.LiveRuns() {
			if strings.HasPrefix(run.ID, ref) {
				id = run.ID
			}
		}
	}
	if id == "" {
		if ferr != nil {
			return ferr // no such box, with its hint
		}
		return fmt.Errorf("%w %q (hint: devbox ls --all lists your boxes and runs)", rbox.ErrNotFound, ref)
	}
	if err := CgroupsUnusable(); err != nil {
		return err
	}
	if !bs.Running(id) && !st.RunLive(id) {
		return fmt.Errorf("box %s is not running (hint: devbox shell %s starts it; devbox stats shows running boxes)", ref, ref)
	}
	return fmt.Errorf("box %s runs without a cgroup: it was started when none could be made (hint: devbox stop %s; its next start gets one)", ref, ref)
}
