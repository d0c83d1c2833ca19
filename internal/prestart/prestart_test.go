package prestart

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func sample() Recipe {
	return Recipe{
		Prefix: []string{"--store", "/s", "run", "--net", "none"},
		TTY:    "01",
		Exe:    "/run/user/1/devbox/devbox-init-x/devbox-init",
		Args:   []string{"devbox-init", "fd:4", "3", "/s/containers/" + IDToken},
		Env:    []string{"PATH=/bin", "_DEVBOX_STAGE=init", "_DEVBOX_START=5,keep,main"},
		Flags:  0x7c020000, Setpgid: true,
		Kinds:  []string{PipeFromTarget, PipeToTarget, PipeToTarget},
		UIDMap: []string{"/usr/bin/newuidmap", "0", "200000", "1000"},
		GIDMap: []string{"/usr/bin/newgidmap", "0", "200000", "1000"},
		Join:   "/user.slice/user-1000.slice/user@1000.service/app.slice",
	}
}

func TestEncodeDecode(t *testing.T) {
	r := sample()
	got, ok := Decode(r.Encode())
	if !ok || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: ok=%v\n got %+v\nwant %+v", ok, got, r)
	}
}

func TestEncodeDecodeSingleID(t *testing.T) {
	r := sample()
	r.UIDMap, r.GIDMap = []string{"-", "0 1000 1"}, []string{"-", "0 1000 1"}
	if got, ok := Decode(r.Encode()); !ok || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip of a single-id recipe: ok=%v %+v", ok, got)
	}
	r.GIDMap = []string{"/usr/bin/newgidmap", "0", "1000", "1"}
	if _, ok := Decode(r.Encode()); ok {
		t.Error("Decode accepted a recipe mixing a single-id uid map and newgidmap")
	}
	r.GIDMap = []string{"-", "0 1000 1", "1 2 3"}
	if _, ok := Decode(r.Encode()); ok {
		t.Error("Decode accepted a single-id map of two lines")
	}
}

func TestDecodeRejects(t *testing.T) {
	good := string(sample().Encode())
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"bad magic", strings.Replace(good, magic, "devbox-prestart-0", 1)},
		{"unknown key", good + "color\x00red\x00"},
		{"dangling key", good + "arg\x00"},
		{"relative exe", strings.Replace(good, "exe\x00/run", "exe\x00run", 1)},
		{"bad fd kind", strings.Replace(good, "fd\x00w\x00", "fd\x00x\x00", 1)},
		{"bad flags", strings.Replace(good, "flags\x00", "flags\x00z", 1)},
		{"relative helper", strings.Replace(good, "uidmap\x00/usr/bin/newuidmap", "uidmap\x00newuidmap", 1)},
		{"no gid map", good[:strings.Index(good, "gidmap\x00")]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := Decode([]byte(tc.in)); ok {
				t.Errorf("Decode accepted %q", tc.in)
			}
		})
	}
}

func TestName(t *testing.T) {
	if hash([]string{"run", "x"}) == hash([]string{"runx"}) {
		t.Error("hash ignores the separation of strings")
	}
	if a := Name([]string{"run", "x"}); len(a) != 4 || a[:2] != "p-" || a != Name([]string{"run", "x"}) {
		t.Errorf("Name = %q", a)
	}
	if r := ReplayName([]string{"a"}, nil, "/"); len(r) != 4 || r[:2] != "r-" {
		t.Errorf("ReplayName = %q", r)
	}
}

func TestSaveRead(t *testing.T) {
	rt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rt, "devbox"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := sample()
	if err := Save(rt, r); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(Dir(rt), Name(r.Prefix))
	got, ok := readRecipe(path)
	if !ok || !reflect.DeepEqual(got, r) {
		t.Fatalf("readRecipe after Save: ok=%v %+v", ok, got)
	}
	// Someone else could have written a group-writable file: not trusted.
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, ok := readRecipe(path); ok {
		t.Error("readRecipe trusted a group-writable recipe")
	}
	os.Chmod(path, 0o600)
	link := filepath.Join(Dir(rt), "p-link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, ok := readRecipe(link); ok {
		t.Error("readRecipe followed a symbolic link")
	}
	// Save replaces atomically and leaves no temporary file.
	r.TTY = "11"
	if err := Save(rt, r); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(Dir(rt))
	if len(ents) != 2 {
		t.Errorf("recipe directory holds %d entries, want the recipe and the link", len(ents))
	}
	if got, _ := readRecipe(path); got.TTY != "11" {
		t.Errorf("Save did not replace the recipe: %+v", got)
	}
}

func TestHelpers(t *testing.T) {
	if got := replace("/c/{id}/x{id}", IDToken, "ab"); got != "/c/ab/xab" {
		t.Errorf("replace = %q", got)
	}
	if id := randomID(); len(id) != 32 || id == randomID() {
		t.Errorf("randomID = %q", id)
	}
}

// TestKeyCoversGetenv: every environment variable devbox's code reads keys
// a replay record, so that a change of one can never replay a stale spec.
func TestKeyCoversGetenv(t *testing.T) {
	re := regexp.MustCompile(`(?:Getenv|LookupEnv)\("([A-Za-z_0-9]+)"\)`)
	n := 0
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "/test/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			n++
			if !KeyVar(m[1], nil) {
				t.Errorf("%s reads $%s, which does not key replay records (internal/prestart keyNames)", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("found only %d environment reads: is the pattern still right?", n)
	}
}

func TestKeyEnviron(t *testing.T) {
	env := []string{"HOME=/h", "RANDOM_NOISE=1", "FOO=bar", "DEVBOX_STORE=/s", "LC_ALL=C", "GODEBUG=x=1"}
	got := KeyEnviron(env, []string{"devbox", "run", "-e", "FOO", "img"})
	want := []string{"DEVBOX_STORE=/s", "FOO=bar", "GODEBUG=x=1", "HOME=/h", "LC_ALL=C"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("KeyEnviron = %q, want %q", got, want)
	}
	if hash(got) == hash(want[:4]) {
		t.Error("the replay key ignores the environment")
	}
	// The same environment in another order keys the same record.
	if other := KeyEnviron([]string{"GODEBUG=x=1", "LC_ALL=C", "FOO=bar", "HOME=/h", "DEVBOX_STORE=/s"}, []string{"devbox", "run", "-e", "FOO", "img"}); !reflect.DeepEqual(other, want) {
		t.Errorf("KeyEnviron depends on the order: %q", other)
	}
}

func TestReplayRecord(t *testing.T) {
	r := sample()
	p := Replay{Argv: []string{"devbox", "run", "img"}, Environ: []string{"HOME=/h"}, Cwd: "/w",
		Spec: []byte(`{"id":"{id}"}`), BoxDir: "/s/containers/{id}", Guards: []string{Guard("/")}, Cgroup: "0::/\n",
		CgroupBase: "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/devbox.scope"}
	r.Replay = &p
	got, ok := Decode(r.Encode())
	if !ok || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: ok=%v\n got %+v\nwant %+v", ok, got.Replay, p)
	}
	if g := Guard("/nonexistent/x"); g != "/nonexistent/x\t-" {
		t.Errorf("Guard of a missing file = %q", g)
	}
}

func TestHasEnvFlag(t *testing.T) {
	cases := []struct {
		argv []string
		want bool
	}{
		{[]string{"devbox", "run", "img", "true"}, false},
		{[]string{"devbox", "run", "--net", "none", "-u", "0", "img"}, false},
		{[]string{"devbox", "run", "-e", "K=V", "img"}, true},
		{[]string{"devbox", "run", "-eK=V", "img"}, true},
		{[]string{"devbox", "run", "-te", "K", "img"}, true},
		{[]string{"devbox", "run", "--env", "K", "img"}, true},
		{[]string{"devbox", "run", "--env=K=V", "img"}, true},
		{[]string{"devbox", "run", "--envelope", "img"}, false},
		{[]string{"devbox", "run", "img", "sh", "-ec", "x"}, true}, // errs towards yes
	}
	for _, c := range cases {
		if got := HasEnvFlag(c.argv); got != c.want {
			t.Errorf("HasEnvFlag(%q) = %v, want %v", c.argv, got, c.want)
		}
	}
}

// TestSaveKeepsNoEnvValues: a record never holds a value of the
// environment: runs with -e are not recorded, the key environment is a
// digest that still matches.
func TestSaveKeepsNoEnvValues(t *testing.T) {
	rt := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(Dir(rt)), 0o700); err != nil {
		t.Fatal(err)
	}
	r := sample()
	r.Prefix = []string{"run", "-e", "TOKEN=hunter2"}
	if err := Save(rt, r); err == nil {
		t.Error("a recipe with -e was saved")
	}
	r = sample()
	p := Replay{Argv: []string{"devbox", "run", "img"}, Environ: []string{"GOPROXY=https://u:hunter2@proxy", "HOME=/h"}, Cwd: "/w",
		Spec: []byte(`{"id":"{id}"}`), BoxDir: "/s/containers/{id}"}
	if err := SaveReplay(rt, r, p); err != nil {
		t.Fatal(err)
	}
	name := Dir(rt) + "/" + ReplayName(p.Argv, p.Environ, p.Cwd)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("hunter2")) {
		t.Errorf("the record holds an environment value:\n%q", b)
	}
	got, ok := Decode(b)
	if !ok || got.Replay == nil || len(got.Replay.Environ) != 1 || got.Replay.Environ[0] != EnvDigest(p.Environ) {
		t.Fatalf("decoded key environment: %+v", got.Replay)
	}
	if EnvDigest(p.Environ) == EnvDigest([]string{"GOPROXY=https://u:hunter3@proxy", "HOME=/h"}) {
		t.Error("the digest does not see a changed value")
	}
	// Saved again as read back (tests do): same file, same digest.
	if err := SaveReplay(rt, got, *got.Replay); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(name); !bytes.Equal(again, b) {
		t.Error("a record saved again as read back changed")
	}
	p.Argv = []string{"devbox", "run", "--env", "TOKEN", "img"}
	if err := SaveReplay(rt, r, p); err == nil {
		t.Error("a replay with --env was saved")
	}
}

// TestBoxCgroupRefusesBases: a replay record is input: a base outside the
// cgroup2 mount, with a dot segment, not on cgroup2, or missing makes no
// cgroup (the CLI runs instead).
func TestBoxCgroupRefusesBases(t *testing.T) {
	tmp := t.TempDir()
	for _, base := range []string{
		"", "/", "/sys/fs/cgroup", "/sys/fs/cgroupx/a", tmp, "/sys/fs/cgroup/../../tmp",
		"/sys/fs/cgroup/./x", "/sys/fs/cgroup/no-such-group-" + filepath.Base(tmp),
	} {
		if c := newBoxCgroup(base, "0123456789abcdef0123456789abcdef"); c != nil {
			c.remove()
			t.Errorf("newBoxCgroup(%q) made %s", base, c.dir)
		}
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("something was made in a base that is not a cgroup: %v", ents)
	}
}

// TestMayJoin: an early start is tried only from inside the recorded
// ancestor; this process's own cgroup is not a cgroup2 group it may write
// on every host, so only the refusals are certain.
func TestMayJoin(t *testing.T) {
	for _, anc := range []string{"/no-such-group/x", "/no-such-group"} {
		if mayJoin(anc) {
			t.Errorf("mayJoin(%q) = true from outside it", anc)
		}
	}
}

func TestDotSegment(t *testing.T) {
	for p, want := range map[string]bool{
		"/home/u/.local/share/devbox/containers/{id}": false,
		"/a/../b": true, "/a/./b": true, "/a/..": true, "/.": true, "/a/.b/c": false, "/a/b..": false,
	} {
		if got := dotSegment(p); got != want {
			t.Errorf("dotSegment(%q) = %v, want %v", p, got, want)
		}
	}
}
