package cmdutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/internal/safefile"
)

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
