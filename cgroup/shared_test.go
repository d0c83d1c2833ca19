package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// The fake trees belong to whoever runs the test: the user manager is
// theirs.
var (
	uidT     = os.Getuid()
	mgrT     = fmt.Sprintf("/user.slice/user-%d.slice/user@%d.service", uidT, uidT)
	shared   = mgrT + "/app.slice/" + SharedScope
	terminal = mgrT + "/app.slice/app-terminal.scope"
	session  = fmt.Sprintf("/user.slice/user-%d.slice/session-2.scope", uidT)
	otherMgr = fmt.Sprintf("/user.slice/user-%d.slice/user@%d.service/app.slice/x.scope", uidT+1, uidT+1)
)

// sharedSystemd plays the user manager for devbox.scope: a started unit
// gets its directory in the fake tree with its PIDs in cgroup.procs. Units
// named in fail fail to start. It counts dials and starts.
type sharedSystemd struct {
	f      *fakeTree
	fail   map[string]bool
	mu     sync.Mutex
	dials  int
	starts []string
	props  map[string]any
}

func (s *sharedSystemd) dial(ctx context.Context) (Systemd, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dials++
	return s, nil
}

func (s *sharedSystemd) StartTransientUnitContext(ctx context.Context, name, mode string, props []sdbus.Property, ch chan<- string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts = append(s.starts, name)
	if s.fail[name] {
		return 0, errors.New("org.freedesktop.systemd1.UnitExists: Unit " + name + " was already loaded")
	}
	s.props = map[string]any{}
	var pids []string
	for _, p := range props {
		s.props[p.Name] = p.Value.Value()
		if p.Name == "PIDs" {
			for _, pid := range p.Value.Value().([]uint32) {
				pids = append(pids, strconv.Itoa(int(pid)))
			}
		}
	}
	s.f.mk(mgrT+"/app.slice/"+name, "cpu io memory pids", pids...)
	ch <- "done"
	return 1, nil
}

func (s *sharedSystemd) Close() {}

// movedBy makes h's caller sit in group self until sd has started more
// than after units, then in box id's own scope (where the user manager
// moves it), and returns that scope.
func movedBy(sd *sharedSystemd, h *Host, self string, after int, id string) string {
	scope := mgrT + "/app.slice/" + ScopeName(id)
	h.Self = func() (string, error) {
		sd.mu.Lock()
		defer sd.mu.Unlock()
		if len(sd.starts) > after {
			return scope, nil
		}
		return self, nil
	}
	return scope
}

// sharedHost is a systemd host whose user manager runs the caller in
// group self; the keepers it starts are sleep processes ended with the test.
func sharedHost(t *testing.T, f *fakeTree, sd *sharedSystemd, self string) (Host, *[]*os.Process) {
	sd.f = f
	f.mk(mgrT, "cpu io memory pids")
	f.mk(mgrT+"/app.slice", "cpu io memory pids")
	f.mk(self, "cpu io memory pids", "4242")
	h := f.host(self)
	h.UserBus = "unix:path=/run/user/1000/bus"
	h.Dial = sd.dial
	h.RuntimeDir = t.TempDir()
	h.IsCgroup2 = func(string) bool { return true }
	var mu sync.Mutex
	keepers := &[]*os.Process{}
	h.StartKeeper = func() (*os.Process, error) {
		c := exec.Command("sleep", "600")
		if err := c.Start(); err != nil {
			return nil, err
		}
		go c.Wait()
		t.Cleanup(func() { c.Process.Kill() })
		mu.Lock()
		*keepers = append(*keepers, c.Process)
		mu.Unlock()
		return c.Process, nil
	}
	return h, keepers
}

// mkShared makes a devbox.scope with a live keeper.
func mkShared(f *fakeTree) {
	f.mk(shared, "cpu io memory pids")
	f.mk(shared+"/"+KeeperLeaf, "", "555")
}

func TestSharedReady(t *testing.T) {
	cases := []struct {
		name string
		make func(f *fakeTree, h *Host)
		err  string // "" ready
	}{
		{"ready", func(f *fakeTree, h *Host) { mkShared(f) }, ""},
		{"missing", func(f *fakeTree, h *Host) {}, errNoScope.Error()},
		{"symbolic link", func(f *fakeTree, h *Host) {
			f.mk("/elsewhere", "cpu io memory pids")
			f.mk("/elsewhere/"+KeeperLeaf, "", "555")
			os.Symlink(filepath.Join(f.root, "elsewhere"), filepath.Join(f.root, shared))
		}, "is not a directory"},
		{"symbolic link above", func(f *fakeTree, h *Host) {
			f.mk("/other/app.slice/"+SharedScope, "cpu io memory pids")
			f.mk("/other/app.slice/"+SharedScope+"/"+KeeperLeaf, "", "555")
			os.RemoveAll(filepath.Join(f.root, mgrT, "app.slice"))
			os.Symlink(filepath.Join(f.root, "other/app.slice"), filepath.Join(f.root, mgrT, "app.slice"))
		}, "goes through a symbolic link"},
		{"plain file", func(f *fakeTree, h *Host) {
			os.WriteFile(filepath.Join(f.root, shared), nil, 0o644)
		}, "is not a directory"},
		{"not cgroup2", func(f *fakeTree, h *Host) {
			mkShared(f)
			h.IsCgroup2 = func(dir string) bool { return dir != filepath.Join(f.root, shared) }
		}, "not in a cgroup2 file system"},
		{"another user's", func(f *fakeTree, h *Host) { mkShared(f); h.UID++ }, "is not delegated to you"},
		{"read-only cgroup.procs", func(f *fakeTree, h *Host) {
			mkShared(f)
			os.Chmod(filepath.Join(f.root, shared, "cgroup.procs"), 0o444)
		}, "is not delegated to you"},
		{"no keeper", func(f *fakeTree, h *Host) {
			f.mk(shared, "cpu io memory pids")
			f.mk(shared+"/"+KeeperLeaf, "")
		}, "has no keeper process"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeTree(t)
			h, _ := sharedHost(t, f, &sharedSystemd{}, terminal)
			c.make(f, &h)
			err := sharedReady(h, shared)
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("sharedReady = %v, want %q", err, c.err)
			}
		})
	}
}

func TestDecideShared(t *testing.T) {
	cases := []struct {
		name  string
		self  string
		make  func(f *fakeTree, h *Host)
		kind  Kind
		base  string
		ready bool
	}{
		{"present", terminal, func(f *fakeTree, h *Host) { mkShared(f) }, Shared, shared, true},
		{"present, CLI in the user manager itself", mgrT + "/init.scope", func(f *fakeTree, h *Host) { mkShared(f) }, Shared, shared, true},
		{"missing", terminal, func(f *fakeTree, h *Host) {}, Shared, shared, false},
		{"missing, no keeper program", terminal, func(f *fakeTree, h *Host) { h.StartKeeper = nil }, Scope, "", false},
		{"missing, no runtime directory", terminal, func(f *fakeTree, h *Host) { h.RuntimeDir = "" }, Scope, "", false},
		{"ssh session", session, func(f *fakeTree, h *Host) { mkShared(f) }, Scope, "", false},
		{"another user's manager", otherMgr, func(f *fakeTree, h *Host) {}, Scope, "", false},
		{"common ancestor not writable", terminal, func(f *fakeTree, h *Host) {
			mkShared(f)
			os.Chmod(filepath.Join(f.root, mgrT, "app.slice", "cgroup.procs"), 0o444)
		}, Scope, "", false},
		{"hostile: a symbolic link", terminal, func(f *fakeTree, h *Host) {
			f.mk("/elsewhere", "cpu io memory pids")
			f.mk("/elsewhere/"+KeeperLeaf, "", "555")
			os.Symlink(filepath.Join(f.root, "elsewhere"), filepath.Join(f.root, shared))
		}, Shared, shared, false},
		{"hostile: not a cgroup", terminal, func(f *fakeTree, h *Host) {
			mkShared(f)
			h.IsCgroup2 = func(string) bool { return false }
		}, Shared, shared, false},
		{"hostile, no keeper program", terminal, func(f *fakeTree, h *Host) {
			mkShared(f)
			h.IsCgroup2 = func(string) bool { return false }
			h.StartKeeper = nil
		}, Scope, "", false},
		{"keeper gone", terminal, func(f *fakeTree, h *Host) { f.mk(shared, "cpu io memory pids") }, Shared, shared, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeTree(t)
			sd := &sharedSystemd{}
			h, _ := sharedHost(t, f, sd, c.self)
			c.make(f, &h)
			d, err := Decide(h, Limits{Memory: 64 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if d.Kind != c.kind || d.Base != c.base || d.Ready != c.ready {
				t.Errorf("Decide = %+v, want %v %q ready %v", d, c.kind, c.base, c.ready)
			}
			if sd.dials != 0 {
				t.Errorf("Decide dialed the bus %d times", sd.dials)
			}
		})
	}
}

func TestDecideSharedMissingController(t *testing.T) {
	f := newFakeTree(t)
	h, _ := sharedHost(t, f, &sharedSystemd{}, terminal)
	f.mk(mgrT, "memory pids")
	_, err := Decide(h, Limits{CPUs: 1})
	if err == nil || !strings.Contains(err.Error(), "cpu controller is not delegated to your systemd user session") || !strings.Contains(err.Error(), DelegateConf) {
		t.Fatalf("got %v", err)
	}
}

// TestSetupSharedNoDBus: devbox.scope exists, so a box is a mkdir and
// file writes below it, and the bus is never dialed.
func TestSetupSharedNoDBus(t *testing.T) {
	f := newFakeTree(t)
	sd := &sharedSystemd{}
	h, keepers := sharedHost(t, f, sd, terminal)
	mkShared(f)
	id := "0123456789abcdef"
	b, err := Setup(context.Background(), h, id, Limits{Memory: 64 << 20, PidsLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != Shared || b.Path != shared+"/devbox-"+id {
		t.Errorf("box %s (%v)", b.Path, b.Kind)
	}
	if sd.dials != 0 || len(*keepers) != 0 {
		t.Errorf("%d dials, %d keepers started", sd.dials, len(*keepers))
	}
	if got := f.read(b.Path + "/memory.max"); got != "67108864" {
		t.Errorf("memory.max %q", got)
	}
	if got := f.read(b.Path + "/pids.max"); got != "20" {
		t.Errorf("pids.max %q", got)
	}
	if got := f.read(shared + "/cgroup.subtree_control"); got != "+cpu +io +memory +pids" {
		t.Errorf("subtree_control %q", got)
	}
	// The CLI stays where it was: nothing moved it.
	if got := f.read(terminal + "/cgroup.procs"); got != "4242" {
		t.Errorf("the caller's cgroup.procs %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.root, terminal, LeafName)); err == nil {
		t.Error("a leaf was made in the caller's cgroup")
	}
}

// TestSetupSharedRefusesHostile: a devbox.scope that is not what devbox
// makes is never used, whatever the decision: the box gets a scope of its
// own and nothing is created below the impostor.
func TestSetupSharedRefusesHostile(t *testing.T) {
	cases := map[string]func(f *fakeTree, h *Host){
		"symbolic link": func(f *fakeTree, h *Host) {
			f.mk("/elsewhere", "cpu io memory pids")
			f.mk("/elsewhere/"+KeeperLeaf, "", "555")
			os.Symlink(filepath.Join(f.root, "elsewhere"), filepath.Join(f.root, shared))
		},
		"not a cgroup": func(f *fakeTree, h *Host) {
			mkShared(f)
			h.IsCgroup2 = func(dir string) bool { return !strings.HasSuffix(dir, SharedScope) }
		},
		"another user's": func(f *fakeTree, h *Host) {
			mkShared(f)
			os.Chmod(filepath.Join(f.root, shared, "cgroup.subtree_control"), 0o444)
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeTree(t)
			sd := &sharedSystemd{fail: map[string]bool{SharedScope: true}}
			h, keepers := sharedHost(t, f, sd, terminal)
			mk(f, &h)
			id := "feedfacecafe0000"
			scope := movedBy(sd, &h, terminal, 0, id)
			b, err := Setup(context.Background(), h, id, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if b.Kind != Scope || b.Path != scope+"/devbox-"+id || len(*keepers) != 0 || strings.Join(sd.starts, " ") != ScopeName(id) {
				t.Errorf("box %s (%v), units %v, %d keepers", b.Path, b.Kind, sd.starts, len(*keepers))
			}
			for _, d := range []string{shared, "/elsewhere"} {
				if _, err := os.Stat(filepath.Join(f.root, d, "devbox-"+id)); err == nil {
					t.Errorf("a box cgroup was made in %s", d)
				}
			}
		})
	}
}

// TestSetupSharedCreate: devbox.scope is missing; CLIs racing to set up
// boxes start it exactly once, with one keeper, which ends in the leaf.
func TestSetupSharedCreate(t *testing.T) {
	f := newFakeTree(t)
	sd := &sharedSystemd{}
	h, keepers := sharedHost(t, f, sd, terminal)
	var wg sync.WaitGroup
	boxes := make([]*Box, 4)
	errs := make([]error, 4)
	for i := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			boxes[i], errs[i] = Setup(context.Background(), h, "feedface000"+strconv.Itoa(i), Limits{})
		}()
	}
	wg.Wait()
	for i, b := range boxes {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if b.Kind != Shared || filepath.Dir(b.Path) != shared {
			t.Errorf("box %d at %s (%v)", i, b.Path, b.Kind)
		}
	}
	if len(sd.starts) != 1 || sd.starts[0] != SharedScope || sd.dials != 1 || len(*keepers) != 1 {
		t.Fatalf("units started %v, %d dials, %d keepers", sd.starts, sd.dials, len(*keepers))
	}
	keeper := (*keepers)[0]
	if pids, ok := sd.props["PIDs"].([]uint32); !ok || len(pids) != 1 || int(pids[0]) != keeper.Pid {
		t.Errorf("PIDs %v, keeper %d", sd.props["PIDs"], keeper.Pid)
	}
	if sd.props["Delegate"] != true || sd.props["Slice"] != "app.slice" || sd.props["CollectMode"] != "inactive-or-failed" {
		t.Errorf("properties %v", sd.props)
	}
	if got := f.read(shared + "/" + KeeperLeaf + "/cgroup.procs"); got != strconv.Itoa(keeper.Pid) {
		t.Errorf("keeper leaf cgroup.procs %q, keeper %d", got, keeper.Pid)
	}
	if _, err := os.Stat(filepath.Join(h.RuntimeDir, "devbox", lockFile)); err != nil {
		t.Errorf("no lock file: %v", err)
	}
}

// TestSetupSharedSessionFallback: a CLI in an ssh session's scope cannot
// clone into devbox.scope: it gets a scope per box, as before.
func TestSetupSharedSessionFallback(t *testing.T) {
	f := newFakeTree(t)
	sd := &sharedSystemd{}
	h, keepers := sharedHost(t, f, sd, session)
	mkShared(f)
	id := "feedfacecafe0000"
	scope := movedBy(sd, &h, session, 0, id)
	b, err := Setup(context.Background(), h, id, Limits{Memory: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != Scope || b.Path != scope+"/devbox-"+id || len(*keepers) != 0 || len(sd.starts) != 1 || sd.starts[0] != ScopeName(id) {
		t.Errorf("box %s (%v), units %v, %d keepers", b.Path, b.Kind, sd.starts, len(*keepers))
	}
}

// TestSetupSharedStartFails: when the user manager refuses devbox.scope,
// the keeper is stopped and the box gets a scope of its own.
func TestSetupSharedStartFails(t *testing.T) {
	f := newFakeTree(t)
	sd := &sharedSystemd{fail: map[string]bool{SharedScope: true}}
	h, keepers := sharedHost(t, f, sd, terminal)
	id := "feedfacecafe0000"
	scope := movedBy(sd, &h, terminal, 1, id)
	b, err := Setup(context.Background(), h, id, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != Scope || b.Path != scope+"/devbox-"+id {
		t.Errorf("box %s (%v)", b.Path, b.Kind)
	}
	if strings.Join(sd.starts, " ") != SharedScope+" "+ScopeName(id) || len(*keepers) != 1 {
		t.Fatalf("units %v, %d keepers", sd.starts, len(*keepers))
	}
	st, err := (*keepers)[0].Wait()
	if err == nil && st.Success() {
		t.Errorf("the keeper was not stopped: %v", st)
	}
}

func TestUserManager(t *testing.T) {
	if got := userManager(terminal, uidT); got != mgrT {
		t.Errorf("userManager = %q", got)
	}
	for _, self := range []string{session, "/", mgrT + "x/app.slice"} {
		if got := userManager(self, uidT); got != "" {
			t.Errorf("userManager(%s) = %q", self, got)
		}
	}
}
