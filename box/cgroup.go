package box

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cgroup/keeper"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/rootless"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// CgroupHost is cgroup.DetectHost with the keeper of devbox.scope wired in.
func CgroupHost() cgroup.Host {
	h := cgroup.DetectHost()
	h.StartKeeper = StartKeeper
	return h
}

// StartKeeper starts the keeper of a new devbox.scope (package
// cgroup/keeper, from devbox-init): in its own session, stdio on
// /dev/null, no other descriptor, in /. It outlives devbox.
func StartKeeper() (*os.Process, error) {
	c := rootless.HostStage(InitExe(), keeper.Stage)
	c.Env = append(c.Env, "GOMAXPROCS=1")
	c.Dir = "/"
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return nil, err
	}
	go c.Wait() //nolint:errcheck // reaps it should it end while devbox runs
	return c.Process, nil
}

// setupCgroup creates the box's cgroup (before anything of the box runs)
// and returns it with its directory opened for CLONE_INTO_CGROUP; both are
// nil when the host offers no cgroup and no limit was asked for.
func setupCgroup(ctx context.Context, h cgroup.Host, id string, l cgroup.Limits) (*cgroup.Box, *os.File, error) {
	h.StartKeeper = StartKeeper
	b, err := cgroup.Setup(ctx, h, id, l)
	if err != nil || b == nil {
		return nil, nil, err
	}
	f, err := b.File()
	if err != nil {
		_ = b.Remove()
		return nil, nil, err
	}
	return b, f, nil
}

// finishCgroup runs when the box has stopped: it returns the OOM kill
// to report (nil without one; the CLI's exit code is 137 then), removes
// the cgroup and its record, and returns why the cgroup could not be
// removed (a warning).
func finishCgroup(b *cgroup.Box, f *os.File, dir string, l cgroup.Limits) (*OOMError, error) {
	if b == nil {
		return nil, nil
	}
	f.Close()
	var oom *OOMError
	if n := b.OOMKills(); n > 0 {
		what := "its memory limit"
		if l.Memory != 0 {
			what += " (--memory " + cgroup.FormatSize(l.Memory) + ")"
		}
		procs := "a process"
		if n > 1 {
			procs = fmt.Sprintf("%d processes", n)
		}
		oom = &OOMError{Msg: fmt.Sprintf("the box hit %s: the kernel killed %s in it for running out of memory (hint: allow more with --memory)", what, procs)}
	}
	cgroup.RemoveRecord(dir)
	return oom, b.Remove()
}

// OOMError says the kernel killed processes of a box over its memory
// limit (the CLI's exit code 137).
type OOMError struct{ Msg string }

func (e *OOMError) Error() string { return e.Msg }

// CgroupBox is a running box that has a cgroup: its directory in the store
// holds a cgroup record (containers/<id>/cgroup).
type CgroupBox struct {
	ID   string
	Name string // "" for an unnamed run
	Dir  string
	Box  *cgroup.Box
}

// Label is how messages and tables name the box.
func (b CgroupBox) Label() string {
	if b.Name != "" {
		return b.Name
	}
	return b.ID[:min(12, len(b.ID))]
}

// CgroupBoxes lists the boxes under containersDir whose cgroup is alive,
// sorted by name then id. Persistent boxes are named in box.json, runs in
// spec.json.
func CgroupBoxes(containersDir string) ([]CgroupBox, error) {
	ents, err := os.ReadDir(containersDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h := cgroup.DetectHost()
	var out []CgroupBox
	for _, ent := range ents {
		dir := filepath.Join(containersDir, ent.Name())
		p, err := cgroup.ReadRecord(dir)
		if err != nil {
			continue
		}
		b, err := cgroup.Load(h.Root, p)
		if err != nil || !b.Populated() {
			continue
		}
		out = append(out, CgroupBox{ID: ent.Name(), Name: boxName(dir), Dir: dir, Box: b})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func boxName(dir string) string {
	for _, f := range []string{"box.json", "spec.json"} {
		// Input: a link to /dev/zero or a fifo must not stall stats.
		b, err := safefile.ReadFile(filepath.Join(dir, f), 1<<20)
		if err != nil {
			continue
		}
		var v struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(b, &v) == nil && v.Name != "" && !strings.ContainsFunc(v.Name, unicode.IsControl) {
			return v.Name
		}
	}
	return ""
}

// FindCgroupBoxes picks the running boxes named by refs (a name, or an id
// or a unique prefix of one of at least 4 characters) from all.
func FindCgroupBoxes(all []CgroupBox, refs []string) ([]CgroupBox, error) {
	var out []CgroupBox
	for _, ref := range refs {
		var match []CgroupBox
		for _, b := range all {
			if b.Name == ref {
				match = append(match, b)
			}
		}
		if len(match) == 0 && len(ref) >= 4 {
			for _, b := range all {
				if strings.HasPrefix(b.ID, ref) {
					match = append(match, b)
				}
			}
		}
		switch len(match) {
		case 0:
			return nil, fmt.Errorf("no running box %q has a cgroup (hint: devbox stats lists the running boxes; a box started where cgroups are unavailable has none)", ref)
		case 1:
			out = append(out, match[0])
		default:
			return nil, fmt.Errorf("%q names %d running boxes (hint: use the box id instead: devbox stats lists them)", ref, len(match))
		}
	}
	return out, nil
}

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
	bs, err := OpenStore(st)
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
