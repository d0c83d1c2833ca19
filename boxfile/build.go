package boxfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/devbox-dev/devbox/image"
)

// BuildFormat is the version of how devbox build turns a box file into an
// image. It is part of every cache key: raise it when the same inputs
// would now give a different image.
const BuildFormat = 1

// LabelBuildKey is the label of a built image that holds its cache key.
const LabelBuildKey = "dev.devbox.build.key"

// Base is the image a build starts from, as stored.
type Base struct {
	Ref      string   // its full reference in the store
	ID       string   // digest of its stored manifest
	Platform string   // os/arch[/variant]
	Env      []string // its config's environment
}

// Commit is what a builder commits: the box's changes as one layer on its
// image, with the config edited as the box file says.
type Commit struct {
	Ref string
	// Env is the new image's whole environment (the base's, with the box
	// file's env merged in).
	Env    []string
	Labels map[string]string
	// Steps are the history entries, in order (CreatedBy); the last one
	// is the layer's, the others are empty_layer entries.
	Steps []string
}

// Builder does the work of devbox build on the store and a temporary box
// (cmd/box implements it).
type Builder interface {
	// Base finds image (an alias or a reference) in the store, pulling it
	// as pull says: "missing" (or ""), "always" or "never".
	Base(image, pull string) (Base, error)
	// Built returns the build key label and the digest of the image
	// stored as ref; ok is false when there is none.
	Built(ref string) (key, id string, ok bool, err error)
	// Recorded returns the digest of the image a build of key stored, as
	// Record recorded it: the label is a claim anyone who has the box
	// file can forge, this record is devbox's own.
	Recorded(key string) (id string, ok bool)
	// Record records that a build of key stored image id.
	Record(key, id string) error
	// Start makes and starts a temporary box of base for s: an empty home
	// of its own (not yours), no exports, no volumes, no ports. It
	// returns the box's name.
	Start(s Spec, base Base) (string, error)
	// Install installs packages in box (the provisioning path of
	// assemble, [provision.repos] honoured).
	Install(box string, packages []string) error
	// Run runs script with /bin/sh -c as root of box, with env, and
	// returns its exit code.
	Run(box string, env []string, script string) (int, error)
	// Commit stops box and stores its changes as image c.Ref.
	Commit(box string, c Commit) (id string, err error)
	// Discard stops and removes box; it must work after any failure.
	Discard(box string) error
	// Push uploads stored image ref to dest and returns the reference
	// pushed.
	Push(ref, dest string) (string, error)
}

// BuildOptions tune Build.
type BuildOptions struct {
	// Tag is the image of the one box built ("": localhost/NAME:latest).
	Tag string
	// NoCache builds even when an image of the same key is stored.
	NoCache bool
	// Pull is when base images are pulled: "missing" (""), "always" or
	// "never".
	Pull string
	// Push, when set, is where the one box's image is pushed.
	Push string
	// Repos are the [provision.repos] of the configuration: they change
	// the packages installed, so they are part of the key.
	Repos map[string]string
	// Progress gets one line per stage, with its duration.
	Progress io.Writer
}

// Stage is one timed stage of a build.
type Stage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// BuildResult is what Build did for one box.
type BuildResult struct {
	Box string `json:"box"`
	Ref string `json:"ref"`
	ID  string `json:"id"`
	// Key is the build's cache key (also the image's dev.devbox.build.key
	// label).
	Key    string  `json:"key"`
	Cached bool    `json:"cached"`
	Pushed string  `json:"pushed,omitempty"`
	Stages []Stage `json:"stages"`
}

// StepError is a step of the box file that failed in the build box: its
// package install or one of its on_create hooks. devbox build exits 1 for
// it (docs/exit-codes.md), any other failure is devbox's own.
type StepError struct {
	Box  string
	Step string // "packages" or "on_create hook N"
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("box %s: %s failed: %v", e.Box, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ImageRef is the image box s is built as: tag when given, else
// localhost/NAME:latest.
func ImageRef(s Spec, tag string) (string, error) {
	if tag != "" {
		return image.LocalName(tag)
	}
	ref, err := image.LocalName(s.Name)
	if err != nil {
		return "", fmt.Errorf("box %s: its name is no image name: %w (hint: name the image with -t)", s.Name, err)
	}
	return ref, nil
}

// Ignored names the fields of s that describe a box rather than an image
// and that devbox build therefore leaves out.
func (s Spec) Ignored() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"on_start", len(s.OnStart) > 0}, {"home", s.Home != ""}, {"desktop", s.Desktop}, {"audio", s.Audio}, {"hostname", s.Hostname != ""},
		{"network", s.Network != ""}, {"ports", len(s.Ports) > 0}, {"volumes", len(s.Volumes) > 0},
		{"limits", s.Limits != (Spec{}).Limits}, {"export", len(s.Bins)+len(s.Apps) > 0},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// keyInput is what a build key is the hash of; its JSON encoding is
// fixed by the field order.
type keyInput struct {
	Format   int        `json:"format"`
	Base     string     `json:"base"`
	Platform string     `json:"platform"`
	Packages []string   `json:"packages"`
	OnCreate []string   `json:"onCreate"`
	Env      []string   `json:"env"`
	Repos    [][]string `json:"repos"`
}

// BuildKey is the cache key of building s on base: a sha256 over the base
// image's digest and platform, the sorted package list, the on_create
// hooks in order, the environment, the repositories the packages come
// from (when there are packages) and BuildFormat.
func BuildKey(base Base, s Spec, repos map[string]string) string {
	in := keyInput{Format: BuildFormat, Base: base.ID, Platform: base.Platform,
		Packages: slices.Sorted(slices.Values(s.Packages)), OnCreate: s.OnCreate, Env: slices.Sorted(slices.Values(s.Env))}
	if len(s.Packages) > 0 {
		for _, k := range slices.Sorted(mapKeys(repos)) {
			in.Repos = append(in.Repos, []string{k, repos[k]})
		}
	}
	b, _ := json.Marshal(in) // strings and ints only: it cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ValidKey reports whether s looks like a build key (64 lower-case hex
// digits): a label read from the store is input.
func ValidKey(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// MergeEnv returns base with each KEY=VALUE of over set: a key base has
// keeps its place with the new value, new keys follow in over's order.
func MergeEnv(base, over []string) []string {
	out := slices.Clone(base)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool { ek, _, _ := strings.Cut(e, "="); return ek == k })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// BuildOrder orders specs for building: a box whose image is written as
// another box's image in the store (localhost/NAME[:latest], what devbox
// build stores box NAME as) comes after it, so that it is built on the new
// one; otherwise boxes keep their (name) order. A cycle is an error.
func BuildOrder(specs []Spec) ([]Spec, error) {
	refs := map[string]int{}
	for i, s := range specs {
		if r, err := ImageRef(s, ""); err == nil {
			refs[r] = i
		}
	}
	deps := make([]int, len(specs)) // the box each stands on, or -1
	for i, s := range specs {
		deps[i] = -1
		if !strings.HasPrefix(s.Image, "localhost/") {
			continue // an alias or another registry's name: not ours
		}
		if r, err := image.LocalName(s.Image); err == nil {
			if j, ok := refs[r]; ok && j != i {
				deps[i] = j
			}
		}
	}
	var out []Spec
	state := make([]int, len(specs)) // 0 new, 1 in progress, 2 placed
	var place func(i int) error
	place = func(i int) error {
		switch state[i] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("box %s: its image is built from itself through other boxes of the file (hint: one of them must name another image)", specs[i].Name)
		}
		state[i] = 1
		if d := deps[i]; d >= 0 {
			if err := place(d); err != nil {
				return err
			}
		}
		state[i] = 2
		out = append(out, specs[i])
		return nil
	}
	for i := range specs {
		if err := place(i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Build makes an image of each box of specs: it pulls the box's image,
// makes a temporary box of it, installs its packages, runs its on_create
// hooks and commits the box as an image, which carries the build's key
// as a label, and records key and image (Builder.Record); the temporary
// box is removed whatever happens. A box whose key matches the label of
// the image already stored under its name, when that image is the one
// recorded for the key, is left alone (cached) unless o.NoCache. It stops
// at the first failure.
func Build(specs []Spec, eng Builder, o BuildOptions) ([]BuildResult, error) {
	if len(specs) > 1 && (o.Tag != "" || o.Push != "") {
		return nil, errors.New("-t and --push name one image: build one box with -b BOX")
	}
	var out []BuildResult
	for _, s := range specs {
		res, err := buildOne(s, eng, o)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

func buildOne(s Spec, eng Builder, o BuildOptions) (res BuildResult, err error) {
	ref, err := ImageRef(s, o.Tag)
	if err != nil {
		return res, err
	}
	res = BuildResult{Box: s.Name, Ref: ref, Stages: []Stage{}}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "devbox: build %s: %s\n", s.Name, fmt.Sprintf(format, a...))
		}
	}
	stage := func(name, what string, f func() error) error {
		t0 := time.Now()
		err := f()
		d := time.Since(t0)
		res.Stages = append(res.Stages, Stage{Name: name, Seconds: d.Seconds()})
		if err == nil {
			say("%-9s %6.2fs  %s", name, d.Seconds(), what)
		}
		return err
	}
	if ign := s.Ignored(); len(ign) > 0 {
		say("ignoring %s (they describe a box, not its image)", strings.Join(ign, ", "))
	}
	var base Base
	if err := stage("pull", s.Image, func() (err error) { base, err = eng.Base(s.Image, o.Pull); return err }); err != nil {
		return res, err
	}
	res.Key = BuildKey(base, s, o.Repos)
	if !o.NoCache {
		key, id, ok, err := eng.Built(ref)
		if err != nil {
			return res, err
		}
		// A cache hit is an image this devbox built for the key, not
		// one that merely carries the label (committed, loaded or pulled
		// under the name).
		if rec, built := eng.Recorded(res.Key); ok && key == res.Key && built && rec == id {
			res.Cached, res.ID = true, id
			say("cached    %s (%s)", ref, id)
			return res, push(&res, eng, o, stage)
		} else if ok && key == res.Key {
			say("%s carries this build's key but was not built here: building it again", ref)
		}
	}
	if err := makeImage(s, eng, base, &res, stage); err != nil {
		return res, err
	}
	if err := eng.Record(res.Key, res.ID); err != nil {
		say("warning: the next build will not find this one in its cache: %v", err)
	}
	return res, push(&res, eng, o, stage)
}

// makeImage builds box s's image on base in a temporary box, which it
// removes whatever happens, and sets res.ID.
func makeImage(s Spec, eng Builder, base Base, res *BuildResult, stage func(name, what string, f func() error) error) (err error) {
	var box string
	serr := stage("create", "temporary box of "+base.Ref, func() (err error) { box, err = eng.Start(s, base); return err })
	if box != "" { // also when it was made but did not start
		defer func() {
			derr := stage("remove", "temporary box "+box, func() error { return eng.Discard(box) })
			if err == nil && derr != nil {
				err = fmt.Errorf("removing the temporary box %s: %w (hint: devbox rm -f %s)", box, derr, box)
			}
		}()
	}
	if serr != nil {
		return serr
	}
	var steps []string
	if len(s.Packages) > 0 {
		what := strings.Join(s.Packages, " ")
		if err := stage("packages", what, func() error {
			err := eng.Install(box, s.Packages)
			if err != nil && !errors.Is(err, context.Canceled) {
				return &StepError{Box: s.Name, Step: "packages", Err: err}
			}
			return err
		}); err != nil {
			return err
		}
		steps = append(steps, "devbox build: packages: "+what)
	}
	env := MergeEnv(base.Env, s.Env)
	for i, h := range s.OnCreate {
		name := fmt.Sprintf("hook %d", i+1)
		if err := stage(name, oneLine(h), func() error {
			code, err := eng.Run(box, env, h)
			if err != nil {
				return err
			}
			if code != 0 {
				return &StepError{Box: s.Name, Step: "on_create " + name + " (" + oneLine(h) + ")", Err: fmt.Errorf("exit %d", code)}
			}
			return nil
		}); err != nil {
			return err
		}
		steps = append(steps, "devbox build: on_create: /bin/sh -c "+h)
	}
	if len(steps) == 0 {
		steps = []string{"devbox build " + s.Name}
	}
	c := Commit{Ref: res.Ref, Env: env, Labels: map[string]string{LabelBuildKey: res.Key}, Steps: steps}
	if err := stage("commit", res.Ref, func() (err error) { res.ID, err = eng.Commit(box, c); return err }); err != nil {
		return err
	}
	return nil
}

func push(res *BuildResult, eng Builder, o BuildOptions, stage func(name, what string, f func() error) error) error {
	if o.Push == "" {
		return nil
	}
	return stage("push", o.Push, func() (err error) { res.Pushed, err = eng.Push(res.Ref, o.Push); return err })
}

// oneLine shortens a hook for a progress line.
func oneLine(s string) string {
	// A box file is input: its control characters (terminal escapes)
	// never reach the terminal.
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) && c != '\n' && c != '\t' {
			return '?'
		}
		return c
	}, s)
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) > 60 {
		r = append(r[:57], []rune("...")...)
	}
	return string(r)
}

// BuildSummary writes one line per result: box, image, digest, and
// whether it was built or cached.
func BuildSummary(w io.Writer, res []BuildResult) {
	for _, r := range res {
		what := "built"
		if r.Cached {
			what = "cached"
		}
		line := r.Box + "\t" + r.Ref + "\t" + r.ID + "\t" + what
		if r.Pushed != "" {
			line += "\t" + r.Pushed
		}
		fmt.Fprintln(w, line)
	}
}
