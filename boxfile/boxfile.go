// Package boxfile reads box files — TOML files that describe boxes as code
// (docs/boxfile.md) — and the common subset of a project's
// .devcontainer/devcontainer.json, and assembles them: creates the boxes
// they name, installs their packages, runs their hooks and exports their
// commands, leaving unchanged boxes alone and rebuilding changed ones; and
// builds images of them in temporary boxes (devbox build), cached on a key
// of their inputs. It decides; an Engine or a Builder (cmd/box) does the
// work on boxes.
package boxfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/runtime"
)

// DefaultFile is the box file devbox assemble reads without an argument.
const DefaultFile = "devbox.toml"

// maxFile bounds what is read of a box file.
const maxFile = 1 << 20

// file is a box file as written.
type file struct {
	Box map[string]boxTOML `toml:"box"`
}

// boxTOML is one [box.NAME] table.
type boxTOML struct {
	Image    string            `toml:"image"`
	Packages []string          `toml:"packages"`
	OnCreate []string          `toml:"on_create"`
	OnStart  []string          `toml:"on_start"`
	Home     string            `toml:"home"`
	Desktop  bool              `toml:"desktop"`
	Audio    bool              `toml:"audio"`
	Hostname string            `toml:"hostname"`
	Network  string            `toml:"network"`
	Ports    []string          `toml:"ports"`
	Volumes  []string          `toml:"volumes"`
	Env      map[string]string `toml:"env"`
	Limits   struct {
		Memory string  `toml:"memory"`
		CPUs   float64 `toml:"cpus"`
		Pids   int64   `toml:"pids"`
	} `toml:"limits"`
	Export struct {
		Bin []string `toml:"bin"`
		App []string `toml:"app"`
	} `toml:"export"`
}

// Spec is one box as devbox assemble makes it: every path absolute, every
// value checked. Its JSON is what an assembled box keeps (assemble.json)
// to tell a changed definition from an unchanged one.
type Spec struct {
	Name     string        `json:"name"`
	Image    string        `json:"image"`
	Packages []string      `json:"packages,omitempty"`
	OnCreate []string      `json:"onCreate,omitempty"`
	OnStart  []string      `json:"onStart,omitempty"`
	Home     string        `json:"home,omitempty"` // "" = your home (a dev box)
	Desktop  bool          `json:"desktop,omitempty"`
	Audio    bool          `json:"audio,omitempty"`
	Hostname string        `json:"hostname,omitempty"`
	Network  string        `json:"network,omitempty"`
	Ports    []string      `json:"ports,omitempty"`
	Volumes  []string      `json:"volumes,omitempty"` // SRC:DST[:ro], SRC absolute
	Env      []string      `json:"env,omitempty"`     // KEY=VALUE, sorted
	Limits   cgroup.Limits `json:"limits,omitzero"`
	Bins     []string      `json:"bins,omitempty"` // export --bin
	Apps     []string      `json:"apps,omitempty"` // export --app
	// User is the user a devcontainer's hooks run as ("" = root).
	User string `json:"user,omitempty"`
}

// Load reads box file path: its boxes, sorted by name.
func Load(path string) ([]Spec, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, filepath.Dir(abs), path)
}

func readFile(path string) ([]byte, error) {
	// Non-blocking, so that a fifo in the file's place does not hang the
	// open; only a regular file is read.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no box file %s (hint: write one, see docs/boxfile.md; or devbox assemble FILE)", path)
		}
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: not a box file", path)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(&limited{f, maxFile + 1}); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if buf.Len() > maxFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a box file", path, maxFile)
	}
	return buf.Bytes(), nil
}

type limited struct {
	f *os.File
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

// maxNesting bounds how deep a box file nests tables, arrays and dotted
// keys: the TOML decoder takes time and memory quadratic in the depth (a
// 40 KB file of nested inline tables took 4 GB), and a box file needs a
// few levels.
const maxNesting = 32

// checkNesting refuses a box file nested deeper than maxNesting: brackets
// and braces outside strings, and the dots of a key (before its "=").
func checkNesting(b []byte) error {
	depth, dots := 0, 0
	var quote byte
	inKey := true
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			for i < len(b) && b[i] != '\n' {
				i++
			}
			inKey, dots = true, 0
		case c == '[' || c == '{':
			depth++
			inKey, dots = c == '{', 0
		case c == ']' || c == '}':
			depth--
		case c == '\n' || c == ',':
			inKey, dots = true, 0
		case c == '=':
			inKey = false
		case c == '.' && inKey:
			dots++
		}
		if depth > maxNesting || dots > maxNesting {
			return fmt.Errorf("nested more than %d levels deep (hint: a box file needs a few; see docs/boxfile.md)", maxNesting)
		}
	}
	return nil
}

// Parse decodes a box file; relative paths are relative to dir, name is
// for messages. Unknown keys are errors (a typo must not be ignored).
func Parse(b []byte, dir, name string) ([]Spec, error) {
	if err := checkNesting(b); err != nil {
		return nil, fmt.Errorf("box file %s: %w", name, err)
	}
	var f file
	md, err := toml.Decode(string(b), &f)
	if err != nil {
		return nil, fmt.Errorf("box file %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("box file %s: unknown key(s) %s (hint: docs/boxfile.md lists the keys)", name, strings.Join(keys, ", "))
	}
	if len(f.Box) == 0 {
		return nil, fmt.Errorf("box file %s names no box (hint: a [box.NAME] table with image = \"debian\")", name)
	}
	var out []Spec
	for n, bt := range f.Box {
		s, err := bt.spec(n, dir)
		if err != nil {
			return nil, fmt.Errorf("box file %s: box %s: %w", name, n, err)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (bt boxTOML) spec(name, dir string) (Spec, error) {
	s := Spec{Name: name, Image: bt.Image, Packages: bt.Packages, OnCreate: bt.OnCreate, OnStart: bt.OnStart,
		Desktop: bt.Desktop, Audio: bt.Audio, Hostname: bt.Hostname, Network: bt.Network, Ports: bt.Ports, Bins: bt.Export.Bin, Apps: bt.Export.App}
	if err := runtime.ValidateName(name); err != nil {
		return s, err
	}
	if s.Image == "" {
		return s, errors.New("no image (hint: image = \"debian\", an alias or a reference)")
	}
	if bt.Home != "" {
		s.Home = absPath(bt.Home, dir)
	}
	for _, v := range bt.Volumes {
		src, rest, ok := strings.Cut(v, ":")
		if !ok {
			return s, fmt.Errorf("volume %q is not SRC:DST[:ro]", v)
		}
		s.Volumes = append(s.Volumes, absPath(src, dir)+":"+rest)
	}
	for k, v := range bt.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return s, fmt.Errorf("env %q is not a variable name", k)
		}
		s.Env = append(s.Env, k+"="+v)
	}
	sort.Strings(s.Env)
	if m := bt.Limits.Memory; m != "" {
		v, err := cgroup.ParseSize(m)
		if err != nil {
			return s, fmt.Errorf("limits.memory: %v", err)
		}
		s.Limits.Memory = v
	}
	s.Limits.CPUs, s.Limits.PidsLimit = bt.Limits.CPUs, bt.Limits.Pids
	s.normalize()
	return s, s.check()
}

// normalize makes empty lists nil, as a Spec read back from JSON has them.
func (s *Spec) normalize() {
	for _, l := range []*[]string{&s.Packages, &s.OnCreate, &s.OnStart, &s.Ports, &s.Volumes, &s.Env, &s.Bins, &s.Apps} {
		if len(*l) == 0 {
			*l = nil
		}
	}
}

// absPath makes p absolute: ~/ is the user's home, a relative path is
// relative to dir (the box file's directory).
func absPath(p, dir string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok || p == "~" {
		home, _ := os.UserHomeDir()
		return filepath.Join(home, rest)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// check refuses what devbox create would refuse, before anything is made.
func (s Spec) check() error {
	if err := provision.CheckPackages(s.Packages); err != nil {
		return fmt.Errorf("packages: %v", err)
	}
	for _, h := range slices.Concat(s.OnCreate, s.OnStart) {
		if strings.TrimSpace(h) == "" || strings.ContainsRune(h, 0) {
			return fmt.Errorf("hook %q is empty or has a NUL byte", h)
		}
	}
	if err := s.Limits.Validate(); err != nil {
		return fmt.Errorf("limits: %v", err)
	}
	for _, b := range s.Bins {
		if !filepath.IsAbs(b) {
			return fmt.Errorf("export.bin %q is not an absolute path in the box", b)
		}
	}
	if s.Audio && (!s.Desktop || s.Home == "") {
		return errors.New("audio goes with home and desktop = true (a box with your own home has your audio already)")
	}
	if len(s.Bins)+len(s.Apps) > 0 && s.Home != "" {
		return errors.New("exports need a dev box (no home = your own home): a box with a home of its own is sandboxed and exports nothing")
	}
	switch s.Network {
	case "", "slirp", "none", "host", "gvisor", "pasta", "slirp4netns":
	default:
		return fmt.Errorf("network %q is not a network mode (slirp, none, host)", s.Network)
	}
	return nil
}

// Changes names the fields in which old and s differ ("image",
// "packages", …; none when equal).
func (s Spec) Changes(old Spec) []string {
	var out []string
	a, b := reflect.ValueOf(s), reflect.ValueOf(old)
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			out = append(out, tag)
		}
	}
	return out
}

// Record is what an assembled box keeps of its definition
// (containers/<id>/assemble.json).
type Record struct {
	File string `json:"file"` // the box file it came from
	Spec Spec   `json:"spec"`
	// Complete is set once the box was made whole (packages, hooks,
	// exports): an interrupted assemble leaves a box that the next one
	// rebuilds.
	Complete bool `json:"complete"`
}

// ParseRecord decodes an assemble.json (input: anything odd reads as a box
// to rebuild, never as an unchanged one).
func ParseRecord(b []byte) (*Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}
