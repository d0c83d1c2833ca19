package warm

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sample() Start {
	return Start{
		Exe:   "/run/user/1/devbox/devbox-init-x/devbox-init",
		Args:  []string{"devbox-init", "fd:4", "3", "/s/containers/" + IDToken},
		Env:   []string{"PATH=/bin", "_DEVBOX_STAGE=init", "_DEVBOX_START=5,keep,main"},
		Flags: 0x7c020000, Setpgid: true,
		UIDMap: []string{"/usr/bin/newuidmap", "0", "200000", "1000"},
		GIDMap: []string{"/usr/bin/newgidmap", "0", "200000", "1000"},
	}
}

// record is a full replay record, with a network helper and a cgroup.
func record() Replay {
	return Replay{Start: sample(), Magic: recordMagic, Sum: digest("x"),
		Spec: []byte(`{"id":"{id}"}`), BoxDir: "/s/containers/{id}", Guarded: []string{"/"},
		CgroupBase: "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/devbox.scope",
		HelperExe:  "/run/user/1/devbox/devbox-net-x/devbox-net", HelperArgs: []string{"devbox-net"},
		HelperOptions: []byte(`{"x":1}`), RunDir: "/run/user/1/devbox/{id16}"}
}

// TestRecordValid: a record is input; only a consistent one is replayed.
func TestRecordValid(t *testing.T) {
	good := record()
	good.Handshake = true // with a network helper
	b, err := json.Marshal(&good)
	if err != nil {
		t.Fatal(err)
	}
	var got Replay
	if !decode(b, &got) || !reflect.DeepEqual(got, good) || !got.valid("/run/user/1") {
		t.Fatalf("round trip: %+v", got)
	}
	single := good
	single.UIDMap, single.GIDMap = []string{"-", "0 1000 1"}, []string{"-", "0 1000 1"}
	if !single.valid("/run/user/1") {
		t.Error("a single-id start is refused")
	}
	tests := []struct {
		name   string
		change func(p *Replay)
	}{
		{"bad magic", func(p *Replay) { p.Magic = "devbox-warm-1" }},
		{"relative exe", func(p *Replay) { p.Exe = "run/x" }},
		{"no arguments", func(p *Replay) { p.Args = nil }},
		{"a helper without a handshake", func(p *Replay) { p.Handshake = false }},
		{"a handshake without a helper", func(p *Replay) { p.HelperExe = "" }},
		{"relative map helper", func(p *Replay) { p.UIDMap = []string{"newuidmap", "0"} }},
		{"no gid map", func(p *Replay) { p.GIDMap = nil }},
		{"a single-id map and newgidmap", func(p *Replay) { p.UIDMap = []string{"-", "0 1000 1"} }},
		{"a single-id map of two lines", func(p *Replay) {
			p.UIDMap, p.GIDMap = []string{"-", "0 1000 1", "1 2 3"}, []string{"-", "0 1000 1", "1 2 3"}
		}},
		{"no spec", func(p *Replay) { p.Spec = nil }},
		{"not a fresh box's directory", func(p *Replay) { p.BoxDir = "/home/u/data" }},
		{"a relative store", func(p *Replay) { p.BoxDir = "s/containers/{id}" }},
		{"a dot segment", func(p *Replay) { p.BoxDir = "/s/../containers/{id}" }},
		{"the id in the store", func(p *Replay) { p.BoxDir = "/{id}/containers/{id}" }},
		{"another runtime directory", func(p *Replay) { p.RunDir = "/home/u/{id16}" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.change(&p)
			if p.valid("/run/user/1") {
				t.Errorf("valid accepted %+v", p)
			}
		})
	}
	for _, in := range []string{"", "{", string(b[:len(b)-1]), `{"Color":"red"}`, strings.Replace(string(b), `"Flags":`, `"Flags":"z",`, 1), string(b) + "{}"} {
		if decode([]byte(in), &got) {
			t.Errorf("decode accepted %q", in)
		}
	}
}

func TestName(t *testing.T) {
	if digest("run", "x") == digest("runx") {
		t.Error("digest ignores the separation of strings")
	}
	if r := ReplayName([]string{"a"}, nil, "/"); len(r) != 4 || r[:2] != "r-" || r != ReplayName([]string{"a"}, nil, "/") {
		t.Errorf("ReplayName = %q", r)
	}
}

// TestSaveRead: records are input: only a regular file of the user's that
// nobody else can write is trusted, never through a link.
func TestSaveRead(t *testing.T) {
	rt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rt, "devbox"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := Replay{Start: sample(), Argv: []string{"devbox", "run", "img"}, Cwd: "/w", Spec: []byte("{}"), BoxDir: "/s/containers/{id}"}
	if err := SaveReplay(rt, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(Dir(rt), ReplayName(p.Argv, nil, p.Cwd))
	gp, ok := readRecord(path)
	if !ok || !reflect.DeepEqual(gp.Start, p.Start) || gp.Sum != gp.sum(key(p.Argv, nil, "/w"), "") || !gp.valid(rt) {
		t.Fatalf("readRecord after SaveReplay: ok=%v %+v", ok, gp)
	}
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, ok := readRecord(path); ok {
		t.Error("readRecord trusted a group-writable record")
	}
	os.Chmod(path, 0o600)
	link := filepath.Join(Dir(rt), "r-link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, ok := readRecord(link); ok {
		t.Error("readRecord followed a symbolic link")
	}
	fifo := filepath.Join(Dir(rt), "r-fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := readRecord(fifo); ok {
		t.Error("readRecord read a fifo")
	}
	// SaveReplay replaces atomically and leaves no temporary file.
	p.Spec = []byte("[2]")
	if err := SaveReplay(rt, p); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(Dir(rt)); len(ents) != 3 {
		t.Errorf("record directory holds %d entries, want the record, the link and the fifo", len(ents))
	}
	if gp, _ := readRecord(path); gp == nil || string(gp.Spec) != "[2]" {
		t.Errorf("SaveReplay did not replace the record: %+v", gp)
	}
	if id := randomID(); len(id) != 32 || id == randomID() {
		t.Errorf("randomID = %q", id)
	}
}

// TestKeyCoversGetenv: every environment variable devbox's code reads keys
// a replay record, so that a change of one can never replay a stale spec
// (the programs under test/ and bench/ are not devbox's).
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
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "/test/") || strings.HasPrefix(path, "../../bench/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			n++
			if !KeyVar(m[1], nil) {
				t.Errorf("%s reads $%s, which does not key replay records (internal/warm keyNames)", path, m[1])
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
	if key(nil, got, "/") == key(nil, want[:4], "/") {
		t.Error("the replay key ignores the environment")
	}
	// The same environment in another order keys the same record.
	if other := KeyEnviron([]string{"GODEBUG=x=1", "LC_ALL=C", "FOO=bar", "HOME=/h", "DEVBOX_STORE=/s"}, []string{"devbox", "run", "-e", "FOO", "img"}); !reflect.DeepEqual(other, want) {
		t.Errorf("KeyEnviron depends on the order: %q", other)
	}
}

// TestSum: a record's sum sees its key, devbox and every guarded file.
func TestSum(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "config")
	if err := os.WriteFile(f, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := record()
	p.Guarded = []string{f, filepath.Join(dir, "missing")}
	sum := p.sum("k", self)
	if sum != p.sum("k", "/proc/self/exe") || sum != p.sum("k", self) {
		t.Fatal("the sum of unchanged inputs changed")
	}
	if p.sum("k2", self) == sum || p.sum("k", "/") == sum {
		t.Error("the sum ignores the key or devbox")
	}
	if state("/nonexistent/x") != "-" || len(strings.Split(state("/"), ":")) != 5 {
		t.Errorf("state: %q, %q", state("/nonexistent/x"), state("/"))
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(f, later, later); err != nil {
		t.Fatal(err)
	}
	if p.sum("k", self) == sum {
		t.Error("the sum ignores a guarded file's change")
	}
	sum = p.sum("k", self)
	if err := os.WriteFile(filepath.Join(dir, "missing"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if p.sum("k", self) == sum {
		t.Error("the sum ignores a guarded file that appeared")
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
	p := Replay{Start: sample(), Argv: []string{"devbox", "run", "img"}, Environ: []string{"GOPROXY=https://u:hunter2@proxy", "HOME=/h"}, Cwd: "/w",
		Spec: []byte(`{"id":"{id}"}`), BoxDir: "/s/containers/{id}"}
	if err := SaveReplay(rt, p); err != nil {
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
	if gp, ok := readRecord(name); !ok || gp.Environ != nil || gp.Sum != gp.sum(key(p.Argv, p.Environ, p.Cwd), "") {
		t.Fatalf("decoded key: %+v", gp)
	}
	if key(p.Argv, p.Environ, p.Cwd) == key(p.Argv, []string{"GOPROXY=https://u:hunter3@proxy", "HOME=/h"}, p.Cwd) {
		t.Error("the key does not see a changed value")
	}
	p.Argv = []string{"devbox", "run", "--env", "TOKEN", "img"}
	if err := SaveReplay(rt, p); err == nil {
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
