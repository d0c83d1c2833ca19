package cgroup

import (
	"context"
	"errors"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// fakeTree is a cgroup v2 hierarchy in a temporary directory: plain files
// where the kernel has interface files.
type fakeTree struct {
	t    *testing.T
	root string
}

func newFakeTree(t *testing.T) *fakeTree {
	return &fakeTree{t: t, root: t.TempDir()}
}

// mk creates cgroup group with the given cgroup.controllers and processes.
func (f *fakeTree) mk(group, controllers string, pids ...string) string {
	f.t.Helper()
	dir := filepath.Join(f.root, group)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	for name, content := range map[string]string{
		"cgroup.controllers":     controllers + "\n",
		"cgroup.subtree_control": "",
		"cgroup.procs":           strings.Join(pids, "\n"),
		"cgroup.events":          "populated 1\nfrozen 0\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	return dir
}

func (f *fakeTree) read(p string) string {
	f.t.Helper()
	// containerd creates missing value files with mode 0 (the kernel's
	// exist already): make them readable for a test run as a normal user.
	_ = os.Chmod(filepath.Join(f.root, p), 0o644)
	b, err := os.ReadFile(filepath.Join(f.root, p))
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (f *fakeTree) host(self string) Host {
	return Host{Root: f.root, Mode: Unified, UID: os.Getuid(), User: "dev1",
		Self: func() (string, error) { return self, nil }}
}

func TestDecide(t *testing.T) {
	mem := Limits{Memory: 64 << 20}
	cpuIO := Limits{CPUs: 0.5, IOWeight: 100, PidsLimit: 10}
	cases := []struct {
		name   string
		host   func(f *fakeTree) Host
		limits Limits
		kind   Kind
		base   string
		errs   []string // substrings of the error; nil: no error
	}{
		{"hybrid without limits", func(f *fakeTree) Host { h := f.host("/"); h.Mode = Hybrid; return h }, Limits{}, None, "", nil},
		{"hybrid with limits", func(f *fakeTree) Host { h := f.host("/"); h.Mode = Hybrid; return h }, mem, 0, "",
			[]string{"cannot apply --memory", "hybrid", "no usable v2 controller", "offers: none", "systemd.unified_cgroup_hierarchy=1"}},
		{"hybrid with only hugetlb in v2", func(f *fakeTree) Host {
			h := f.host("/")
			h.Mode, h.V2Controllers = Hybrid, []string{"hugetlb"}
			return h
		}, mem, 0, "", []string{"hybrid", "no usable v2 controller", "offers: hugetlb)"}},
		{"hybrid with v2 controllers", func(f *fakeTree) Host {
			h := f.host("/")
			h.Mode, h.V2Controllers = Hybrid, []string{"pids"}
			return h
		}, mem, 0, "", []string{"hybrid", "needs the unified cgroup v2 hierarchy"}},
		{"legacy", func(f *fakeTree) Host { h := f.host("/"); h.Mode = Legacy; return h }, mem, 0, "", []string{"cgroup v1 only"}},
		{"legacy without limits", func(f *fakeTree) Host { h := f.host("/"); h.Mode = Legacy; return h }, Limits{}, None, "", nil},
		{"unavailable", func(f *fakeTree) Host { h := f.host("/"); h.Mode = Unavailable; return h }, mem, 0, "", []string{"no cgroup filesystem"}},
		{"user bus", func(f *fakeTree) Host {
			h := f.host("/user.slice")
			h.UserBus = "unix:path=/run/user/1000/bus"
			return h
		}, mem, Scope, "", nil},
		{"delegated subtree", func(f *fakeTree) Host {
			f.mk("/user/dev1", "cpu io memory pids")
			return f.host("/user/dev1")
		}, mem, Subtree, "/user/dev1", nil},
		{"delegated subtree, devbox moved us to its leaf", func(f *fakeTree) Host {
			f.mk("/user/dev1", "cpu io memory pids")
			f.mk("/user/dev1/devbox-leaf", "")
			return f.host("/user/dev1/devbox-leaf")
		}, mem, Subtree, "/user/dev1", nil},
		{"not delegated, no limits", func(f *fakeTree) Host {
			f.mk("/user/dev1", "cpu io memory pids")
			h := f.host("/user/dev1")
			h.UID++
			return h
		}, Limits{}, None, "", nil},
		{"not delegated, limits", func(f *fakeTree) Host {
			f.mk("/user/dev1", "cpu io memory pids")
			h := f.host("/user/dev1")
			h.UID++
			return h
		}, mem, 0, "", []string{"no systemd user session", "not delegated to you", "loginctl enable-linger dev1"}},
		{"read-only cgroup.procs", func(f *fakeTree) Host {
			dir := f.mk("/user/dev1", "cpu io memory pids")
			os.Chmod(filepath.Join(dir, "cgroup.procs"), 0o444)
			return f.host("/user/dev1")
		}, mem, 0, "", []string{"not delegated to you"}},
		{"missing cgroup", func(f *fakeTree) Host { return f.host("/gone") }, mem, 0, "", []string{"cannot be used"}},
		{"controller not delegated", func(f *fakeTree) Host {
			f.mk("/user/dev1", "memory pids")
			return f.host("/user/dev1")
		}, cpuIO, 0, "", []string{"cannot apply --cpus, --io-weight:", "cpu and io controllers are not enabled", "offers: memory pids", DelegateConf, "systemctl daemon-reload"}},
		{"controller not delegated, no limits", func(f *fakeTree) Host {
			f.mk("/user/dev1", "")
			return f.host("/user/dev1")
		}, Limits{}, Subtree, "/user/dev1", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeTree(t)
			d, err := Decide(c.host(f), c.limits)
			if c.errs != nil {
				if err == nil {
					t.Fatalf("Decide = %+v, want an error", d)
				}
				var le *LimitError
				if !errors.As(err, &le) {
					t.Errorf("error is %T, want *LimitError", err)
				}
				for _, s := range c.errs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Kind != c.kind || d.Base != c.base {
				t.Errorf("Decide = %+v, want kind %v base %q", d, c.kind, c.base)
			}
		})
	}
}

func TestCheckControllersScopeHint(t *testing.T) {
	f := newFakeTree(t)
	f.mk("/u/app.slice/devbox-x.scope", "memory pids")
	err := CheckControllers(f.root, "/u/app.slice/devbox-x.scope", Limits{CPUs: 1}, Scope)
	if err == nil || !strings.Contains(err.Error(), "cannot apply --cpus: the cpu controller is not delegated to your systemd user session") ||
		!strings.Contains(err.Error(), DelegateConf) {
		t.Fatalf("got %v", err)
	}
}

func TestSetupSubtree(t *testing.T) {
	f := newFakeTree(t)
	f.mk("/user/dev1", "cpu io memory pids", "4242", "4243")
	// The box directory is created by Setup; pre-create it with an
	// io.weight file, as the kernel would offer it.
	id := "0123456789abcdef"
	box := "/user/dev1/devbox-" + id
	os.MkdirAll(filepath.Join(f.root, box), 0o755)
	os.WriteFile(filepath.Join(f.root, box, "io.weight"), []byte("default 100\n"), 0o644)

	l := Limits{Memory: 64 << 20, MemorySwap: 128 << 20, CPUs: 0.5, CPUWeight: 50, PidsLimit: 20, IOWeight: 300}
	b, err := Setup(context.Background(), f.host("/user/dev1"), id, l)
	if err != nil {
		t.Fatal(err)
	}
	if b.Path != box || b.Kind != Subtree {
		t.Errorf("box at %s (%v)", b.Path, b.Kind)
	}
	// The processes of the base went to the leaf (the fake keeps the last
	// write), and the controllers were enabled for the children.
	if got := f.read("/user/dev1/devbox-leaf/cgroup.procs"); got != "4243" {
		t.Errorf("leaf cgroup.procs = %q", got)
	}
	if got := f.read("/user/dev1/cgroup.subtree_control"); got != "+cpu +io +memory +pids" {
		t.Errorf("subtree_control = %q", got)
	}
	for file, want := range map[string]string{
		"memory.max": "67108864", "memory.swap.max": "67108864", "cpu.max": "50000 100000",
		"cpu.weight": "50", "pids.max": "20", "io.weight": "default 300",
	} {
		if got := f.read(filepath.Join(box, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	fd, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	fd.Close()
}

func TestSetupWithoutCgroupNoLimits(t *testing.T) {
	f := newFakeTree(t)
	h := f.host("/")
	h.Mode = Hybrid
	b, err := Setup(context.Background(), h, "x", Limits{})
	if b != nil || err != nil {
		t.Fatalf("Setup = %v, %v; want nothing", b, err)
	}
}

// fakeSystemd plays the user manager: StartTransientUnit creates the scope
// in the fake tree, "moves" the caller there and reports the job done.
type fakeSystemd struct {
	f      *fakeTree
	slice  string
	self   *string
	name   string
	props  map[string]any
	fail   error
	result string
	closed bool
}

func (s *fakeSystemd) StartTransientUnitContext(ctx context.Context, name, mode string, props []sdbus.Property, ch chan<- string) (int, error) {
	if s.fail != nil {
		return 0, s.fail
	}
	s.name = name
	s.props = map[string]any{}
	for _, p := range props {
		s.props[p.Name] = p.Value.Value()
	}
	p := s.slice + "/" + name
	s.f.mk(p, "cpu memory pids", "777")
	*s.self = p
	if s.result == "" {
		s.result = "done"
	}
	ch <- s.result
	return 1, nil
}

func (s *fakeSystemd) Close() { s.closed = true }

func scopeHost(f *fakeTree, sd *fakeSystemd) Host {
	self := "/user.slice/user-1000.slice/session-2.scope"
	sd.f, sd.self, sd.slice = f, &self, "/user.slice/user-1000.slice/user@1000.service/app.slice"
	h := f.host("")
	h.Self = func() (string, error) { return self, nil }
	h.UserBus = "unix:path=/run/user/1000/bus"
	h.Dial = func(ctx context.Context) (Systemd, error) { return sd, nil }
	return h
}

func TestSetupScope(t *testing.T) {
	f := newFakeTree(t)
	sd := &fakeSystemd{}
	id := "feedfacecafe0000"
	b, err := Setup(context.Background(), scopeHost(f, sd), id, Limits{Memory: 64 << 20, PidsLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	scope := sd.slice + "/devbox-feedfacecafe.scope"
	if sd.name != "devbox-feedfacecafe.scope" || b.Path != scope+"/devbox-"+id || b.Kind != Scope || !sd.closed {
		t.Errorf("unit %s, box %s (%v), closed %v", sd.name, b.Path, b.Kind, sd.closed)
	}
	if sd.props["Delegate"] != true || sd.props["Slice"] != "app.slice" || sd.props["DefaultDependencies"] != false {
		t.Errorf("properties %v", sd.props)
	}
	if pids, ok := sd.props["PIDs"].([]uint32); !ok || len(pids) != 1 || int(pids[0]) != os.Getpid() {
		t.Errorf("PIDs %v", sd.props["PIDs"])
	}
	if got := f.read(scope + "/devbox-leaf/cgroup.procs"); got != "777" {
		t.Errorf("the caller was not moved to the leaf: %q", got)
	}
	if got := f.read(b.Path + "/memory.max"); got != "67108864" {
		t.Errorf("memory.max %q", got)
	}
}

func TestSetupScopeMissingController(t *testing.T) {
	f := newFakeTree(t)
	sd := &fakeSystemd{}
	_, err := Setup(context.Background(), scopeHost(f, sd), "feedfacecafe0000", Limits{IOWeight: 100})
	if err == nil || !strings.Contains(err.Error(), "io controller is not delegated to your systemd user session") || !strings.Contains(err.Error(), DelegateConf) {
		t.Fatalf("got %v", err)
	}
}

func TestSetupScopeFailsFallsBack(t *testing.T) {
	// The bus answers but has no systemd behind it: a delegated subtree
	// is used instead; without one, limits fail with both reasons.
	f := newFakeTree(t)
	sd := &fakeSystemd{fail: errors.New("org.freedesktop.DBus.Error.ServiceUnknown")}
	h := scopeHost(f, sd)
	self := "/user/dev1"
	f.mk(self, "cpu memory pids", "99")
	h.Self = func() (string, error) { return self, nil }
	b, err := Setup(context.Background(), h, "abc", Limits{Memory: 64 << 20})
	if err != nil || b.Kind != Subtree || b.Path != "/user/dev1/devbox-abc" {
		t.Fatalf("Setup = %+v, %v", b, err)
	}
	h.UID++
	_, err = Setup(context.Background(), h, "abd", Limits{Memory: 64 << 20})
	if err == nil || !strings.Contains(err.Error(), "ServiceUnknown") || !strings.Contains(err.Error(), "loginctl enable-linger") {
		t.Fatalf("got %v", err)
	}
	if b, err := Setup(context.Background(), h, "abe", Limits{}); b != nil || err != nil {
		t.Fatalf("without limits: %v, %v", b, err)
	}
}

func TestSetupScopeJobFailed(t *testing.T) {
	f := newFakeTree(t)
	sd := &fakeSystemd{result: "failed"}
	h := scopeHost(f, sd)
	h.UID++ // no subtree to fall back to
	_, err := Setup(context.Background(), h, "feedfacecafe0000", Limits{Memory: 64 << 20})
	if err == nil || !strings.Contains(err.Error(), "job failed") {
		t.Fatalf("got %v", err)
	}
}

func TestBoxStatUpdateRecord(t *testing.T) {
	f := newFakeTree(t)
	dir := f.mk("/b/devbox-1", "cpu memory pids")
	for name, content := range map[string]string{
		"cpu.stat":       "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 300\n",
		"cpu.max":        "50000 100000\n",
		"memory.current": "1048576\n",
		"memory.max":     "max\n",
		"memory.peak":    "2097152\n",
		"memory.stat":    "anon 4096\n",
		"memory.events":  "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"pids.current":   "3\n",
		"pids.max":       "20\n",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	b, err := Load(f.root, "/b/devbox-1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU.UsageUsec != 1500000 || s.CPU.Limit == nil || *s.CPU.Limit != 0.5 || s.CPU.Throttled != 300 {
		t.Errorf("cpu %+v", s.CPU)
	}
	if s.Memory.Current != 1<<20 || s.Memory.Limit != nil || s.Memory.Peak != 2<<20 || s.Memory.OOMKills != 1 {
		t.Errorf("memory %+v", s.Memory)
	}
	if s.Pids.Current != 3 || s.Pids.Limit == nil || *s.Pids.Limit != 20 {
		t.Errorf("pids %+v", s.Pids)
	}
	if b.OOMKills() != 1 || !b.Populated() {
		t.Errorf("oom %d populated %v", b.OOMKills(), b.Populated())
	}
	if err := b.Update(Limits{Memory: 256 << 20, MemorySwap: -1}); err != nil {
		t.Fatal(err)
	}
	if got := f.read("/b/devbox-1/memory.max"); got != "268435456" {
		t.Errorf("memory.max %q", got)
	}
	if got := f.read("/b/devbox-1/memory.swap.max"); got != "max" {
		t.Errorf("memory.swap.max %q", got)
	}
	if err := b.Update(Limits{IOWeight: 10}); err == nil || !strings.Contains(err.Error(), "cannot apply --io-weight") {
		t.Errorf("io weight without io files: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "io.bfq.weight"), []byte("100\n"), 0o644)
	if err := b.Update(Limits{IOWeight: 5000}); err != nil || f.read("/b/devbox-1/io.bfq.weight") != "500" {
		t.Errorf("bfq weight: %v %q", err, f.read("/b/devbox-1/io.bfq.weight"))
	}

	boxDir := filepath.Join(t.TempDir(), "1") // box 1's directory
	if err := os.Mkdir(boxDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(boxDir); !errors.Is(err, ErrNoRecord) {
		t.Errorf("ReadRecord of nothing: %v", err)
	}
	if err := WriteRecord(boxDir, b.Path); err != nil {
		t.Fatal(err)
	}
	if p, err := ReadRecord(boxDir); err != nil || p != b.Path {
		t.Errorf("ReadRecord = %q, %v", p, err)
	}
	// A record is input: only the box's own cgroup, from a small
	// regular file reached without a link.
	rec := filepath.Join(boxDir, RecordFile)
	for _, bad := range []string{"../../etc\n", "/b/devbox-2\n", "/user.slice/user-1000.slice/session-3.scope\n", "/b/devbox-1/..\n"} {
		os.WriteFile(rec, []byte(bad), 0o644)
		if p, err := ReadRecord(boxDir); err == nil {
			t.Errorf("record %q accepted as %q", bad, p)
		}
	}
	os.Remove(rec)
	other := filepath.Join(t.TempDir(), "x")
	os.WriteFile(other, []byte(b.Path+"\n"), 0o644)
	if err := os.Symlink(other, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(boxDir); err == nil {
		t.Error("a record behind a link was followed")
	}
	os.Remove(rec)
	if err := unix.Mkfifo(rec, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(boxDir); err == nil { // and returns at once
		t.Error("a fifo was read as a record")
	}
	RemoveRecord(boxDir)
	if _, err := ReadRecord(boxDir); !errors.Is(err, ErrNoRecord) {
		t.Errorf("after RemoveRecord: %v", err)
	}
}
