package boxfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	home, _ := os.UserHomeDir()
	for _, c := range []struct {
		name, src string
		want      string // error substring; "" accepts
		check     func(t *testing.T, s []Spec)
	}{
		{"two boxes", `
[box.web]
image = "debian"
packages = ["less"]
on_create = ["echo hi > /etc/motd"]
on_start = ["true"]
ports = ["8080:80"]
volumes = ["./src:/src:ro", "~/data:/data"]
env = { B = "2", A = "1" }
limits = { memory = "1g", cpus = 1.5, pids = 512 }
export = { bin = ["/usr/bin/less"] }
[box.db]
image = "busybox"
home = "boxes/db"
network = "none"
`, "", func(t *testing.T, s []Spec) {
			if len(s) != 2 || s[0].Name != "db" || s[1].Name != "web" {
				t.Fatalf("boxes %+v", s)
			}
			w := s[1]
			if !slices.Equal(w.Volumes, []string{"/proj/src:/src:ro", filepath.Join(home, "data") + ":/data"}) {
				t.Errorf("volumes %v", w.Volumes)
			}
			if !slices.Equal(w.Env, []string{"A=1", "B=2"}) || w.Limits.Memory != 1<<30 || w.Limits.CPUs != 1.5 || w.Limits.PidsLimit != 512 {
				t.Errorf("env %v limits %+v", w.Env, w.Limits)
			}
			if s[0].Home != "/proj/boxes/db" || s[0].Packages != nil {
				t.Errorf("db %+v", s[0])
			}
		}},
		{"typo", "[box.a]\nimage = \"x\"\npackage = [\"less\"]\n", "unknown key(s) box.a.package", nil},
		{"no image", "[box.a]\npackages = []\n", "no image", nil},
		{"no box", "# nothing\n", "names no box", nil},
		{"bad name", "[box.\"a/b\"]\nimage = \"x\"\n", "box a/b", nil},
		{"option as a package", "[box.a]\nimage = \"x\"\npackages = [\"-oDebug=1\"]\n", "not a package name", nil},
		{"export from a sandbox", "[box.a]\nimage = \"x\"\nhome = \"h\"\nexport = { bin = [\"/bin/sh\"] }\n", "exports need a dev box", nil},
		{"relative export", "[box.a]\nimage = \"x\"\nexport = { bin = [\"sh\"] }\n", "not an absolute path", nil},
		{"bad network", "[box.a]\nimage = \"x\"\nnetwork = \"bridge\"\n", "not a network mode", nil},
		{"bad memory", "[box.a]\nimage = \"x\"\nlimits = { memory = \"lots\" }\n", "limits.memory", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse([]byte(c.src), "/proj", "devbox.toml")
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, s)
		})
	}
}

// fakeEngine keeps boxes in memory and logs what it was asked.
type fakeEngine struct {
	boxes map[string]*Existing
	log   []string
	fail  string // an operation prefix that fails
}

func (f *fakeEngine) do(op string) error {
	f.log = append(f.log, op)
	if f.fail != "" && strings.HasPrefix(op, f.fail) {
		return errors.New("failed: " + op)
	}
	return nil
}

func (f *fakeEngine) Find(name string) (*Existing, error) { return f.boxes[name], nil }
func (f *fakeEngine) Create(s Spec) error {
	if err := f.do("create " + s.Name); err != nil {
		return err
	}
	f.boxes[s.Name] = &Existing{}
	return nil
}
func (f *fakeEngine) Install(n string, p []string) error {
	return f.do("install " + n + " " + strings.Join(p, ","))
}
func (f *fakeEngine) Hook(n, u, s string) error   { return f.do("hook " + n + " " + s) }
func (f *fakeEngine) Export(n, b, a string) error { return f.do("export " + n + " " + b + a) }
func (f *fakeEngine) Save(n string, r Record) error {
	f.boxes[n].Assembled = &r
	return nil
}
func (f *fakeEngine) Remove(n string) error {
	delete(f.boxes, n)
	return f.do("rm " + n)
}

func TestAssemble(t *testing.T) {
	src := func(pkgs string) []Spec {
		s, err := Parse([]byte("[box.a]\nimage = \"debian\"\npackages = ["+pkgs+"]\non_create = [\"touch /x\"]\nexport = { bin = [\"/usr/bin/less\"] }\n[box.b]\nimage = \"debian\"\n"), "/p", "f")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	eng := &fakeEngine{boxes: map[string]*Existing{}}
	steps := []struct {
		name    string
		specs   []Spec
		opts    Options
		actions string
		log     string
		wantErr bool
	}{
		{"create both", src(`"less"`), Options{}, "a=create b=create",
			"create a|install a less|hook a touch /x|export a /usr/bin/less|create b|install b ", false},
		{"again: nothing", src(`"less"`), Options{}, "a=unchanged b=unchanged", "", false},
		{"package list edited", src(`"less", "sudo"`), Options{}, "a=replace[packages] b=unchanged",
			"rm a|create a|install a less,sudo|hook a touch /x|export a /usr/bin/less", false},
		{"dry run of --rm", src(`"less", "sudo"`), Options{Rm: true, DryRun: true}, "a=remove b=remove", "", false},
		{"rm", src(`"less", "sudo"`), Options{Rm: true}, "a=remove b=remove", "rm a|rm b", false},
		{"rm again", src(`"less", "sudo"`), Options{Rm: true}, "a=absent b=absent", "", false},
	}
	for _, st := range steps {
		eng.log = nil
		res, err := Assemble(st.specs, eng, st.opts)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: %v", st.name, err)
		}
		var acts []string
		for _, r := range res {
			a := r.Name + "=" + r.Action
			if len(r.Changes) > 0 {
				a += "[" + strings.Join(r.Changes, ",") + "]"
			}
			acts = append(acts, a)
		}
		if got := strings.Join(acts, " "); got != st.actions {
			t.Errorf("%s: actions %q, want %q", st.name, got, st.actions)
		}
		if got := strings.Join(eng.log, "|"); got != st.log {
			t.Errorf("%s: did %q, want %q", st.name, got, st.log)
		}
	}

	// A box of that name not made by assemble is refused unless --replace;
	// a half-made one (a failed hook) is rebuilt next time.
	eng = &fakeEngine{boxes: map[string]*Existing{"a": {}}}
	if _, err := Assemble(src(`"less"`), eng, Options{File: "f"}); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Errorf("someone else's box: %v", err)
	}
	eng = &fakeEngine{boxes: map[string]*Existing{}, fail: "hook"}
	if _, err := Assemble(src(`"less"`), eng, Options{}); err == nil {
		t.Fatal("a failed hook did not fail")
	}
	eng.fail = ""
	res, err := Assemble(src(`"less"`), eng, Options{})
	if err != nil || res[0].Action != ActionReplace || res[0].Changes[0] != "an earlier assemble did not finish" {
		t.Errorf("after a failed hook: %+v, %v", res, err)
	}
	// The image pulled again.
	eng.boxes["b"].ImageID, eng.boxes["b"].StoreID = "sha256:1", "sha256:2"
	res, _ = Assemble(src(`"less"`), eng, Options{DryRun: true})
	if res[1].Action != ActionReplace || res[1].Changes[0] != "image (pulled again)" {
		t.Errorf("image pulled again: %+v", res[1])
	}
}

func TestDevcontainer(t *testing.T) {
	proj, _ := filepath.Abs("testdata/project")
	p, err := FindDevcontainer(proj)
	if err != nil {
		t.Fatal(err)
	}
	s, notes, err := LoadDevcontainer(p, proj)
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Name: "project", Image: "mcr.microsoft.com/devcontainers/base:debian",
		Env:      []string{"GREETING=hello // not a comment", "WS=" + proj},
		User:     "user",
		Ports:    []string{"3000:3000"},
		OnCreate: []string{`'sh' '-c' 'echo created > /tmp/created'`},
		Volumes:  []string{proj + "/data:/data:ro"},
	}
	if ch := s.Changes(want); len(ch) > 0 {
		t.Errorf("fields %v differ: got %+v", ch, s)
	}
	joined := strings.Join(notes, "\n")
	for _, w := range []string{"ignored: customizations, features", `remoteUser "vscode"`, `forwardPorts "db:5432"`, "only bind mounts"} {
		if !strings.Contains(joined, w) {
			t.Errorf("notes lack %q:\n%s", w, joined)
		}
	}
	if _, _, err := ParseDevcontainer([]byte(`{"build": {"dockerfile": "Dockerfile"}}`), proj, "x"); err == nil || !strings.Contains(err.Error(), "no \"image\"") {
		t.Errorf("no image: %v", err)
	}
}
