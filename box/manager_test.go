package box

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// testManager is a Manager on a fresh store in a temporary directory,
// with the built-in aliases and the given settings.
func testManager(t *testing.T, ids rootless.Mapping, set Settings) *Manager {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var warned []string
	m, err := Open(t.Context(), Deps{
		Images: st, Mapping: ids,
		Settings: func() (Settings, error) { return set, nil },
		Aliases:  func() (alias.Table, error) { return alias.New(nil), nil },
		Warn:     func(msg string) { warned = append(warned, msg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var subIDs = rootless.Mapping{UID: 1000, GID: 1000, SubUIDs: []rootless.Range{{Start: 100000, Length: 65536}}, SubGIDs: []rootless.Range{{Start: 100000, Length: 65536}}}

// A record as Create would make it, stored.
func storedBox(t *testing.T, m *Manager, name string, edit func(*rbox.Record)) *rbox.Record {
	t.Helper()
	r := &rbox.Record{ID: runtime.NewID(), Name: name, Image: "docker.io/library/debian:latest",
		ImageID: "sha256:" + strings.Repeat("ab", 32), Created: time.Now().UTC(), Hostname: name, Net: network.ModeNone,
		Lowers: []string{strings.Repeat("cd", 32)}}
	if edit != nil {
		edit(r)
	}
	if err := m.bs.Create(r); err != nil {
		t.Fatal(err)
	}
	got, err := m.bs.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// CheckExisting: shell's create flags for an existing box are refused
// only when they ask for something else, with the command that would do
// it as the hint.
func TestCheckExisting(t *testing.T) {
	m := testManager(t, subIDs, Settings{})
	tab := alias.New(nil)
	named, _, err := image.Resolve("debian", tab)
	if err != nil {
		t.Fatal(err)
	}
	r := storedBox(t, m, "dev", func(r *rbox.Record) {
		r.Image = image.FullName(named)
		r.Limits = cgroup.Limits{Memory: 1 << 30}
		r.Publish = []string{"8080:80"}
	})
	for _, c := range []struct {
		name    string
		o       CreateOptions
		changed []string
		given   map[string][]string
		want    string // "" accepted, else part of the error
	}{
		{"same hostname", CreateOptions{Hostname: "dev"}, []string{"hostname"}, nil, ""},
		{"the alias of its image", CreateOptions{Image: "debian"}, []string{"image"}, nil, ""},
		{"the default grace", CreateOptions{Grace: rbox.DefaultGrace}, []string{"grace"}, nil, ""},
		{"same ports", CreateOptions{Publish: []string{"8080:80"}}, []string{"publish"}, nil, ""},
		{"another hostname", CreateOptions{Hostname: "x"}, []string{"hostname"},
			map[string][]string{"hostname": {"--hostname x"}}, "devbox rm dev && devbox create dev --hostname x"},
		{"another image", CreateOptions{Image: "fedora"}, []string{"image"},
			map[string][]string{"image": {"--image fedora"}}, "drop --image to enter it"},
		{"limits only", CreateOptions{Limits: cgroup.Limits{Memory: 2 << 30}}, []string{"memory"},
			map[string][]string{"memory": {"--memory 2GiB"}}, "devbox update dev --memory 2GiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := m.CheckExisting(r, c.o, c.changed, c.given)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("err = %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestWantsProvision(t *testing.T) {
	off := false
	for _, c := range []struct {
		name    string
		ids     rootless.Mapping
		set     Settings
		edit    func(*rbox.Record)
		again   bool
		want    bool
		wantErr string
	}{
		{"a new dev box", subIDs, Settings{}, nil, false, true, ""},
		{"configured off", subIDs, Settings{Provision: provision.Config{Auto: &off}}, nil, false, false, ""},
		{"--no-provision", subIDs, Settings{}, func(r *rbox.Record) { r.NoProvision = true }, false, false, ""},
		{"provisioned", subIDs, Settings{}, func(r *rbox.Record) { r.Provision = &provision.State{} }, false, false, ""},
		{"provisioned, again", subIDs, Settings{}, func(r *rbox.Record) { r.Provision = &provision.State{} }, true, true, ""},
		{"a sandbox", subIDs, Settings{}, func(r *rbox.Record) { r.Home = "/srv/elsewhere" }, false, false, ""},
		{"a sandbox, again", subIDs, Settings{}, func(r *rbox.Record) { r.Home = "/srv/elsewhere" }, true, false, "only dev boxes"},
		{"no subordinate ids", rootless.Mapping{UID: 1000, GID: 1000}, Settings{}, nil, false, false, ""},
		{"no subordinate ids, again", rootless.Mapping{UID: 1000, GID: 1000}, Settings{}, nil, true, false, "subordinate ids"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := testManager(t, c.ids, c.set)
			r := &rbox.Record{Name: "dev"}
			if c.edit != nil {
				c.edit(r)
			}
			got, err := m.wantsProvision(r, c.again)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("wantsProvision = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// Enter refuses a missing box that cannot be created, as a usage error,
// before anything is pulled or started.
func TestEnterMissing(t *testing.T) {
	m := testManager(t, subIDs, Settings{})
	_, err := m.Enter(EnterOptions{CreateOptions: CreateOptions{Name: "debain"}, MayCreate: true})
	if !IsInput(err) || !strings.Contains(err.Error(), `did you mean "debian"`) {
		t.Errorf("shell debain: %v, want an input error suggesting debian", err)
	}
	_, err = m.Enter(EnterOptions{CreateOptions: CreateOptions{Name: "nobox"}})
	if !errors.Is(err, rbox.ErrNotFound) {
		t.Errorf("exec nobox: %v, want not found", err)
	}
	_, err = m.Create(CreateOptions{Name: "bad/name"})
	if !IsInput(err) {
		t.Errorf("create bad/name: %v, want an input error", err)
	}
	_, err = m.Create(CreateOptions{Name: "x", Volumes: []string{"/no/such/dir:/d"}})
	if !IsInput(err) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("create -v: %v", err)
	}
}

// A stopped box is listed as such, found by prune (and its dry run), and
// stop of a name that is neither a box nor a run says so.
func TestStoppedListAndPrunePlan(t *testing.T) {
	m := testManager(t, subIDs, Settings{})
	storedBox(t, m, "dev", nil)
	ls, err := m.List(true)
	if err != nil || len(ls) != 1 || ls[0].Status != "stopped" || ls[0].Run {
		t.Fatalf("List = %+v, %v", ls, err)
	}
	stopped, err := m.Stopped()
	if err != nil || len(stopped) != 1 || stopped[0].Name != "dev" {
		t.Fatalf("Stopped = %v, %v", stopped, err)
	}
	plan, err := m.PruneDryRun(stopped)
	if err != nil || plan.Boxes != 1 || len(plan.Items) == 0 || plan.Items[0].Kind != store.KindBox || plan.Items[0].Name != "dev" {
		t.Errorf("PruneDryRun = %+v, %v", plan, err)
	}
	if _, err := m.StopAny("nothing"); !errors.Is(err, rbox.ErrNotFound) {
		t.Errorf("StopAny(nothing) = %v", err)
	}
	if _, err := m.Ports("dev"); err == nil || !strings.Contains(err.Error(), "box dev is not running (hint: devbox shell dev starts it)") {
		t.Errorf("Ports of a stopped box: %v", err)
	}
	if _, err := m.Clone("dev", "bad/name", false); !IsInput(err) {
		t.Errorf("Clone to bad/name: %v, want an input error", err)
	}
	// Stopping a stopped box is done at once.
	if name, err := m.StopAny("dev"); err != nil || name != "dev" {
		t.Errorf("StopAny(dev) = %q, %v", name, err)
	}
}

// Network.Apply is the one place a start's spec gets its network, for
// devbox run (fd 3) and a box's start (fd 4) alike.
func TestNetworkApply(t *testing.T) {
	for _, c := range []struct {
		name     string
		n        Network
		fd       int
		wantFD   int
		hostname string // the helper's, after Apply
		early    bool   // the init sets the network up without the helper
	}{
		{"host", Network{Choice: NetworkChoice{Driver: network.ModeHost}}, 4, 0, "", false},
		{"none", Network{Choice: NetworkChoice{Driver: network.ModeNone}}, 3, 0, "", false},
		{"a box's start", Network{Choice: NetworkChoice{Driver: network.DriverGvisor}}, 4, 4, "web", true},
		{"a run, hostname chosen first", Network{Choice: NetworkChoice{Driver: network.DriverGvisor, Hostname: "run1"}}, 3, 3, "run1", true},
		{"a run with -p", Network{Choice: NetworkChoice{Driver: network.DriverGvisor, Publish: []network.PortSpec{{Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8080, BoxPort: 80}}}}, 3, 3, "web", false},
		{"a dev box forwarding its ports", Network{Choice: NetworkChoice{Driver: network.DriverGvisor, AutoPorts: true}}, 4, 4, "web", false},
		{"pasta", Network{Choice: NetworkChoice{Driver: network.DriverPasta}}, 3, 3, "web", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := &runtime.Spec{Hostname: "web"}
			c.n.Apply(spec, "nameserver 10.0.0.1\n", c.fd)
			if spec.Net != c.n.Choice.Driver || spec.NetFD != c.wantFD || c.n.Choice.Hostname != c.hostname || spec.NetEarly != c.early {
				t.Errorf("spec net %q fd %d early %v, helper hostname %q", spec.Net, spec.NetFD, spec.NetEarly, c.n.Choice.Hostname)
			}
			if userMode := c.wantFD != 0; userMode != (spec.Hosts != "" && spec.ResolvConf != "") {
				t.Errorf("hosts %q, resolv.conf %q", spec.Hosts, spec.ResolvConf)
			}
			if c.n.HasHelper() || c.n.Failed() != nil {
				t.Error("a helper before Start")
			}
		})
	}
}
