package boxfile

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestBuildKey(t *testing.T) {
	base := Base{Ref: "docker.io/library/debian:13", ID: "sha256:" + strings.Repeat("a", 64), Platform: "linux/amd64"}
	spec := Spec{Name: "web", Image: "debian", Packages: []string{"less", "make"}, OnCreate: []string{"echo a", "echo b"}, Env: []string{"A=1", "B=2"}}
	repos := map[string]string{"apt": "deb http://127.0.0.1/ ./", "dnf": "x"}
	ref := BuildKey(base, spec, repos)
	if !ValidKey(ref) {
		t.Fatalf("key %q is not 64 hex digits", ref)
	}
	same := []struct {
		name string
		base Base
		spec Spec
		reps map[string]string
	}{
		{"packages in another order", base, with(spec, func(s *Spec) { s.Packages = []string{"make", "less"} }), repos},
		{"env in another order", base, with(spec, func(s *Spec) { s.Env = []string{"B=2", "A=1"} }), repos},
		{"another base ref of the same digest", Base{Ref: "debian:latest", ID: base.ID, Platform: base.Platform}, spec, repos},
		{"fields a build ignores", base, with(spec, func(s *Spec) {
			s.OnStart, s.Ports, s.Home, s.Network = []string{"x"}, []string{"80:80"}, "/h", "none"
		}), repos},
	}
	for _, c := range same {
		if got := BuildKey(c.base, c.spec, c.reps); got != ref {
			t.Errorf("%s: the key changed", c.name)
		}
	}
	differ := []struct {
		name string
		base Base
		spec Spec
		reps map[string]string
	}{
		{"base digest", Base{ID: "sha256:" + strings.Repeat("b", 64), Platform: base.Platform}, spec, repos},
		{"platform", Base{ID: base.ID, Platform: "linux/arm64"}, spec, repos},
		{"a package more", base, with(spec, func(s *Spec) { s.Packages = append(s.Packages, "git") }), repos},
		{"a package less", base, with(spec, func(s *Spec) { s.Packages = s.Packages[:1] }), repos},
		{"hooks in another order", base, with(spec, func(s *Spec) { s.OnCreate = []string{"echo b", "echo a"} }), repos},
		{"a hook edited", base, with(spec, func(s *Spec) { s.OnCreate = []string{"echo a", "echo c"} }), repos},
		{"no hooks", base, with(spec, func(s *Spec) { s.OnCreate = nil }), repos},
		{"env value", base, with(spec, func(s *Spec) { s.Env = []string{"A=1", "B=3"} }), repos},
		{"env entry more", base, with(spec, func(s *Spec) { s.Env = append(s.Env, "C=") }), repos},
		{"repository changed", base, spec, map[string]string{"apt": "deb http://127.0.0.2/ ./", "dnf": "x"}},
		{"repository removed", base, spec, map[string]string{"apt": "deb http://127.0.0.1/ ./"}},
		{"no repositories", base, spec, nil},
		// Hook text split differently between hooks is another build.
		{"hooks joined", base, with(spec, func(s *Spec) { s.OnCreate = []string{"echo a\", \"echo b"} }), repos},
	}
	seen := map[string]string{ref: "the reference"}
	for _, c := range differ {
		got := BuildKey(c.base, c.spec, c.reps)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: same key as %s", c.name, prev)
		}
		seen[got] = c.name
	}
	// Without packages, the repositories do not matter.
	noPkgs := with(spec, func(s *Spec) { s.Packages = nil })
	if BuildKey(base, noPkgs, repos) != BuildKey(base, noPkgs, nil) {
		t.Error("repositories changed the key of a box without packages")
	}
}

func with(s Spec, f func(*Spec)) Spec {
	s.Packages, s.OnCreate, s.Env = slices.Clone(s.Packages), slices.Clone(s.OnCreate), slices.Clone(s.Env)
	f(&s)
	return s
}

func TestValidKey(t *testing.T) {
	for _, c := range []struct {
		s  string
		ok bool
	}{
		{strings.Repeat("0f", 32), true},
		{strings.Repeat("0F", 32), false},
		{strings.Repeat("a", 63), false},
		{strings.Repeat("a", 65), false},
		{"", false},
		{strings.Repeat("g", 64), false},
	} {
		if ValidKey(c.s) != c.ok {
			t.Errorf("ValidKey(%q) = %v", c.s, !c.ok)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	for _, c := range []struct{ base, over, want []string }{
		{nil, nil, nil},
		{[]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"}, []string{"PATH=/bin", "A=2", "B=3"}},
		{[]string{"A=1"}, []string{"AB=2"}, []string{"A=1", "AB=2"}},
		{[]string{"A=1=2"}, []string{"A="}, []string{"A="}},
	} {
		if got := MergeEnv(c.base, c.over); !slices.Equal(got, c.want) {
			t.Errorf("MergeEnv(%q, %q) = %q, want %q", c.base, c.over, got, c.want)
		}
	}
}

// fakeBuilder records what Build asks of a Builder.
type fakeBuilder struct {
	calls    []string
	stored   map[string]string // ref -> key
	ids      map[string]string // ref -> image digest ("sha256:img" when unset)
	records  map[string]string // key -> digest (Record)
	hookExit int
	env      []string
	commit   Commit
}

func (f *fakeBuilder) Base(image, pull string) (Base, error) {
	f.calls = append(f.calls, "base "+image)
	return Base{Ref: "docker.io/library/" + image + ":latest", ID: "sha256:" + strings.Repeat("1", 64), Platform: "linux/amd64", Env: []string{"PATH=/bin", "A=base"}}, nil
}

func (f *fakeBuilder) Built(ref string) (string, string, bool, error) {
	k, ok := f.stored[ref]
	id := f.ids[ref]
	if id == "" {
		id = "sha256:img"
	}
	return k, id, ok, nil
}

func (f *fakeBuilder) Recorded(key string) (string, bool) {
	id, ok := f.records[key]
	return id, ok
}

func (f *fakeBuilder) Record(key, id string) error {
	f.calls = append(f.calls, "record")
	if f.records == nil {
		f.records = map[string]string{}
	}
	f.records[key] = id
	return nil
}

func (f *fakeBuilder) Start(s Spec, b Base) (string, error) {
	f.calls = append(f.calls, "start")
	return s.Name + "-tmp", nil
}

func (f *fakeBuilder) Install(box string, p []string) error {
	f.calls = append(f.calls, "install "+strings.Join(p, ","))
	return nil
}

func (f *fakeBuilder) Run(box string, env []string, script string) (int, error) {
	f.calls = append(f.calls, "run "+script)
	f.env = env
	return f.hookExit, nil
}

func (f *fakeBuilder) Commit(box string, c Commit) (string, error) {
	f.calls = append(f.calls, "commit "+c.Ref)
	f.commit = c
	f.stored[c.Ref] = c.Labels[LabelBuildKey]
	if f.ids == nil {
		f.ids = map[string]string{}
	}
	f.ids[c.Ref] = "sha256:new"
	return "sha256:new", nil
}

func (f *fakeBuilder) Discard(box string) error {
	f.calls = append(f.calls, "discard "+box)
	return nil
}

func (f *fakeBuilder) Push(ref, dest string) (string, error) {
	f.calls = append(f.calls, "push "+dest)
	return dest, nil
}

func TestBuildSteps(t *testing.T) {
	spec := Spec{Name: "web", Image: "debian", Packages: []string{"less"}, OnCreate: []string{"echo a", "false"}, Env: []string{"A=box", "B=2"}}
	key := BuildKey(Base{ID: "sha256:" + strings.Repeat("1", 64), Platform: "linux/amd64"}, spec, nil)
	labelled := map[string]string{"localhost/web:latest": key}
	recorded := map[string]string{key: "sha256:img"}
	built := "base debian|start|install less|run echo a|run false|commit localhost/web:latest|discard web-tmp|record"
	var progress strings.Builder
	cases := []struct {
		name     string
		spec     Spec
		opts     BuildOptions
		stored   map[string]string
		records  map[string]string
		hookExit int
		calls    string
		cached   bool
		failed   bool
	}{
		{name: "new", spec: spec, calls: built},
		{name: "cached", spec: spec, stored: labelled, records: recorded, calls: "base debian", cached: true},
		{name: "cached, pushed", spec: spec, opts: BuildOptions{Push: "r/x:1"}, stored: labelled, records: recorded,
			calls: "base debian|push r/x:1", cached: true},
		{name: "no cache", spec: spec, opts: BuildOptions{NoCache: true}, stored: labelled, records: recorded, calls: built},
		{name: "another key stored", spec: spec, stored: map[string]string{"localhost/web:latest": strings.Repeat("f", 64)}, records: recorded,
			calls: built},
		// The attack: an image committed, loaded or pulled under the name
		// with the key as its label, which anyone with the box file can
		// compute. devbox never built it: it is built again.
		{name: "forged label, no record", spec: spec, stored: labelled, calls: built},
		{name: "forged label, the key recorded for another image", spec: spec, stored: labelled,
			records: map[string]string{key: "sha256:" + strings.Repeat("2", 64)}, calls: built},
		{name: "failing hook", spec: spec, hookExit: 3, failed: true, calls: "base debian|start|install less|run echo a|discard web-tmp"},
		{name: "tag and push", spec: spec, opts: BuildOptions{Tag: "team/web:1", Push: "127.0.0.1:5000/web:1"},
			calls: "base debian|start|install less|run echo a|run false|commit localhost/team/web:1|discard web-tmp|record|push 127.0.0.1:5000/web:1"},
		{name: "nothing to do", spec: Spec{Name: "bare", Image: "busybox"}, calls: "base busybox|start|commit localhost/bare:latest|discard bare-tmp|record"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeBuilder{stored: map[string]string{}, records: map[string]string{}, hookExit: c.hookExit}
			for k, v := range c.stored {
				f.stored[k] = v
			}
			for k, v := range c.records {
				f.records[k] = v
			}
			// A hook named "false" exits 0 here unless hookExit says
			// otherwise: the fake runs nothing.
			res, err := Build([]Spec{c.spec}, f, BuildOptions{Tag: c.opts.Tag, Push: c.opts.Push, NoCache: c.opts.NoCache, Progress: &progress})
			if got := strings.Join(f.calls, "|"); got != c.calls {
				t.Errorf("calls:\n got %s\nwant %s", got, c.calls)
			}
			var se *StepError
			if c.failed {
				if !errors.As(err, &se) || se.Step != "on_create hook 1 (echo a)" || se.Box != "web" {
					t.Fatalf("want a StepError of hook 1, got %v", err)
				}
				return
			}
			if err != nil || len(res) != 1 || res[0].Cached != c.cached {
				t.Fatalf("Build: %+v, %v", res, err)
			}
			if c.cached {
				return
			}
			if k := BuildKey(Base{ID: "sha256:" + strings.Repeat("1", 64), Platform: "linux/amd64"}, c.spec, nil); f.records[k] != "sha256:new" {
				t.Errorf("the build was not recorded: %q", f.records)
			}
			if n := len(f.commit.Steps); c.spec.Name == "web" && (n != 3 || f.commit.Steps[0] != "devbox build: packages: less" ||
				f.commit.Steps[2] != "devbox build: on_create: /bin/sh -c false") {
				t.Errorf("history steps: %q", f.commit.Steps)
			}
			if c.spec.Name == "web" && !slices.Equal(f.commit.Env, []string{"PATH=/bin", "A=box", "B=2"}) {
				t.Errorf("image env: %q", f.commit.Env)
			}
			if c.spec.Name == "web" && !slices.Equal(f.env, f.commit.Env) {
				t.Errorf("hooks ran with %q, the image has %q", f.env, f.commit.Env)
			}
		})
	}
	if !strings.Contains(progress.String(), "devbox: build web: cached") || !strings.Contains(progress.String(), "devbox: build web: hook 2") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestBuildRefusals(t *testing.T) {
	f := &fakeBuilder{stored: map[string]string{}}
	two := []Spec{{Name: "a", Image: "x"}, {Name: "b", Image: "x"}}
	if _, err := Build(two, f, BuildOptions{Tag: "t"}); err == nil {
		t.Error("-t with two boxes")
	}
	if _, err := Build([]Spec{{Name: "Upper", Image: "x"}}, f, BuildOptions{}); err == nil || !strings.Contains(err.Error(), "-t") {
		t.Errorf("a box name that is no image name: %v", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("refused builds did work: %q", f.calls)
	}
}

func TestImageRefAndIgnored(t *testing.T) {
	for _, c := range []struct {
		name, tag, want string
	}{
		{"web", "", "localhost/web:latest"},
		{"web", "team/web:1", "localhost/team/web:1"},
		{"web", "127.0.0.1:5000/web:2", "127.0.0.1:5000/web:2"},
		{"Web", "", ""},
		{"web", "a b", ""},
	} {
		got, err := ImageRef(Spec{Name: c.name}, c.tag)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("ImageRef(%q, %q) = %q, %v; want %q", c.name, c.tag, got, err, c.want)
		}
	}
	s := Spec{Name: "web", Image: "debian", Packages: []string{"x"}, OnCreate: []string{"y"}, Env: []string{"A=1"}}
	if ign := s.Ignored(); len(ign) != 0 {
		t.Errorf("what makes the image is ignored: %q", ign)
	}
	s.Ports, s.Volumes, s.OnStart, s.Limits.PidsLimit = []string{"80:80"}, []string{"/a:/b"}, []string{"z"}, 10
	if ign := strings.Join(s.Ignored(), ","); ign != "on_start,ports,volumes,limits" {
		t.Errorf("Ignored() = %q", ign)
	}
}

func TestBuildOrder(t *testing.T) {
	spec := func(name, img string) Spec { return Spec{Name: name, Image: img} }
	names := func(ss []Spec) string {
		var n []string
		for _, s := range ss {
			n = append(n, s.Name)
		}
		return strings.Join(n, ",")
	}
	cases := []struct {
		in   []Spec
		want string
	}{
		{[]Spec{spec("a", "debian"), spec("b", "busybox")}, "a,b"},
		{[]Spec{spec("app", "localhost/base:latest"), spec("base", "debian")}, "base,app"},
		{[]Spec{spec("app", "localhost/base"), spec("base", "debian"), spec("c", "localhost/app:latest")}, "base,app,c"},
		// An alias of the same name as a box is the alias, not the box.
		{[]Spec{spec("app", "debian"), spec("debian", "debian")}, "app,debian"},
		// Another tag, or another registry, is not a box of the file.
		{[]Spec{spec("app", "localhost/base:1"), spec("base", "debian")}, "app,base"},
		{[]Spec{spec("app", "127.0.0.1:5000/base:latest"), spec("base", "debian")}, "app,base"},
		// A box on its own image: the stored one, built earlier.
		{[]Spec{spec("self", "localhost/self:latest")}, "self"},
	}
	for _, c := range cases {
		got, err := BuildOrder(c.in)
		if err != nil || names(got) != c.want {
			t.Errorf("BuildOrder(%s) = %s, %v; want %s", names(c.in), names(got), err, c.want)
		}
	}
	if _, err := BuildOrder([]Spec{spec("a", "localhost/b"), spec("b", "localhost/a")}); err == nil || !strings.Contains(err.Error(), "from itself") {
		t.Errorf("a cycle: %v", err)
	}
}
