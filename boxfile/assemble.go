package boxfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Existing is what an Engine knows of a box that exists.
type Existing struct {
	// Assembled is the box's assemble.json (nil: the box was not made by
	// devbox assemble, or its record cannot be read).
	Assembled *Record
	// ImageID is the digest of the image the box was made from; StoreID
	// that of the image its reference names in the store now ("" when
	// not stored): they differ once the image was pulled again.
	ImageID, StoreID string
}

// Engine does the work on boxes (cmd/box implements it).
type Engine interface {
	// Find returns box name, or nil when there is none.
	Find(name string) (*Existing, error)
	// Create makes box s (devbox create, pulling its image when needed)
	// with s.OnStart as its start hooks.
	Create(s Spec) error
	// Install installs packages in box name (started when needed).
	Install(name string, packages []string) error
	// Hook runs script with /bin/sh -c in box name, as user ("": root).
	Hook(name, user, script string) error
	// Export puts box name's command bin or application app on the host.
	Export(name, bin, app string) error
	// Save writes box name's assemble.json.
	Save(name string, r Record) error
	// Remove removes box name (stopping it; its exports go with it).
	Remove(name string) error
}

// Options tune Assemble.
type Options struct {
	File string // the box file's path, kept in each box's record
	// Rm removes the file's boxes instead.
	Rm bool
	// Replace rebuilds a box of the same name that devbox assemble did
	// not make (without it, such a box is an error).
	Replace bool
	// DryRun only reports what would be done.
	DryRun bool
	// Progress gets one line per step.
	Progress io.Writer
}

// Actions in a Result.
const (
	ActionCreate    = "create"
	ActionReplace   = "replace"
	ActionUnchanged = "unchanged"
	ActionRemove    = "remove"
	ActionAbsent    = "absent" // --rm of a box that does not exist
)

// Result is what Assemble did (or would do) with one box.
type Result struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	// Changes are the box file's fields that changed ("image",
	// "packages", …), or why the box is rebuilt otherwise.
	Changes []string `json:"changes,omitempty"`
}

// Assemble makes the boxes of specs as they say: a missing box is created
// and set up (packages, on_create hooks, exports); an unchanged one is left
// alone; one whose definition (or stored image) changed is removed and
// made again. With Rm, it removes them. It stops at the first failure.
func Assemble(specs []Spec, eng Engine, o Options) ([]Result, error) {
	var out []Result
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "devbox: "+format+"\n", a...)
		}
	}
	for _, s := range specs {
		ex, err := eng.Find(s.Name)
		if err != nil {
			return out, err
		}
		if o.Rm {
			res := Result{Name: s.Name, Action: ActionAbsent}
			if ex != nil {
				if ex.Assembled == nil && !o.Replace {
					return out, notOurs(s.Name, o.File)
				}
				res.Action = ActionRemove
				if !o.DryRun {
					say("box %s: removing", s.Name)
					if err := eng.Remove(s.Name); err != nil {
						return out, err
					}
				}
			}
			out = append(out, res)
			continue
		}
		res := Result{Name: s.Name, Action: ActionCreate}
		if ex != nil {
			switch {
			case ex.Assembled == nil && !o.Replace:
				return out, notOurs(s.Name, o.File)
			case ex.Assembled == nil:
				res.Changes = []string{"not made by devbox assemble"}
			case !ex.Assembled.Complete:
				res.Changes = []string{"an earlier assemble did not finish"}
			default:
				res.Changes = s.Changes(ex.Assembled.Spec)
				if ex.StoreID != "" && ex.ImageID != "" && ex.StoreID != ex.ImageID && !contains(res.Changes, "image") {
					res.Changes = append(res.Changes, "image (pulled again)")
				}
			}
			res.Action = ActionReplace
			if len(res.Changes) == 0 {
				res.Action = ActionUnchanged
			}
		}
		out = append(out, res)
		if o.DryRun || res.Action == ActionUnchanged {
			continue
		}
		if res.Action == ActionReplace {
			say("box %s: rebuilding (%s changed)", s.Name, strings.Join(res.Changes, ", "))
			if err := eng.Remove(s.Name); err != nil {
				return out, err
			}
		} else {
			say("box %s: creating from %s", s.Name, s.Image)
		}
		if err := build(s, eng, o.File); err != nil {
			return out, err
		}
	}
	return out, nil
}

// build creates box s and sets it up; its record says complete last.
func build(s Spec, eng Engine, file string) error {
	if err := eng.Create(s); err != nil {
		return err
	}
	if err := eng.Save(s.Name, Record{File: file, Spec: s}); err != nil {
		return err
	}
	if err := eng.Install(s.Name, s.Packages); err != nil {
		return err
	}
	for _, h := range s.OnCreate {
		if err := eng.Hook(s.Name, s.User, h); err != nil {
			return fmt.Errorf("box %s: on_create hook %q: %w", s.Name, h, err)
		}
	}
	for _, b := range s.Bins {
		if err := eng.Export(s.Name, b, ""); err != nil {
			return err
		}
	}
	for _, a := range s.Apps {
		if err := eng.Export(s.Name, "", a); err != nil {
			return err
		}
	}
	return eng.Save(s.Name, Record{File: file, Spec: s, Complete: true})
}

func notOurs(name, file string) error {
	return fmt.Errorf("box %s exists and was not made by devbox assemble (hint: devbox rm %s, or devbox assemble --replace %s replaces it)", name, name, file)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Summary writes one line per result.
func Summary(w io.Writer, res []Result) {
	for _, r := range res {
		line := r.Name + "\t" + r.Action
		if len(r.Changes) > 0 {
			line += "\t" + strings.Join(r.Changes, ", ")
		}
		fmt.Fprintln(w, line)
	}
}

// MarshalRecord encodes r for assemble.json.
func MarshalRecord(r Record) ([]byte, error) {
	if r.Spec.Name == "" {
		return nil, errors.New("assemble record without a box")
	}
	return json.MarshalIndent(r, "", "  ")
}
