package box

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/runtime"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RunOptions.check: every flag mistake is an input error (exit 125 with
// the usage hint) found before anything is done.
func TestRunOptionsCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*RunOptions)
		want string // "" = valid
	}{
		{"defaults", func(*RunOptions) {}, ""},
		{"name", func(o *RunOptions) { o.Name = "web-1" }, ""},
		{"bad name", func(o *RunOptions) { o.Name = "bad/name" }, "invalid box name"},
		{"pull always", func(o *RunOptions) { o.Pull = "always" }, ""},
		{"pull never", func(o *RunOptions) { o.Pull = "never" }, ""},
		{"bad pull", func(o *RunOptions) { o.Pull = "sometimes" }, `invalid --pull "sometimes"`},
		{"no pull", func(o *RunOptions) { o.Pull = "" }, "invalid --pull"},
		{"tiny memory", func(o *RunOptions) { o.Limits.Memory = 1 }, "too small"},
		{"swap without memory", func(o *RunOptions) { o.Limits.MemorySwap = 1 << 30 }, "--memory-swap needs --memory"},
		{"cap-add", func(o *RunOptions) { o.CapAdd = []string{"NET_RAW"} }, ""},
		{"bad cap-add", func(o *RunOptions) { o.CapAdd = []string{"NO_SUCH_CAP"} }, "NO_SUCH_CAP"},
		{"bad security-opt", func(o *RunOptions) { o.SecurityOpt = []string{"apparmor=x"} }, "apparmor=x"},
		{"relative device", func(o *RunOptions) { o.Devices = []string{"dev/null"} }, "not an absolute path"},
		{"missing device", func(o *RunOptions) { o.Devices = []string{"/dev/no-such-device"} }, "no such device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := RunOptions{Image: "busybox", Pull: "missing"}
			c.edit(&o)
			_, err := o.check()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !IsInput(err)):
				t.Errorf("%v, want an input error with %q", err, c.want)
			}
		})
	}
}

// A --device is resolved once, in check, to the path the spec binds.
func TestRunOptionsCheckResolvesDevices(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "null")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	given := []string{link}
	o := RunOptions{Pull: "missing", Devices: given}
	sec, err := o.check()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Devices, []string{"/dev/null"}) || given[0] != link {
		t.Errorf("devices %v (given %v), want [/dev/null] without changing the caller's slice", o.Devices, given)
	}
	if sec.AllowSetuid {
		t.Error("a run allows setuid programs without --security-opt no-new-privileges=false")
	}
}

func TestRunTerminal(t *testing.T) {
	for _, c := range []struct {
		in, out, tty, notty bool
		want                bool
	}{
		{false, false, false, false, false},
		{true, true, false, false, true},
		{true, false, false, false, false}, // output piped
		{false, true, false, false, false}, // input piped
		{true, true, false, true, false},   // -T
		{false, false, true, false, true},  // -t
		{true, true, true, true, true},     // -t wins
	} {
		o := RunOptions{InTTY: c.in, OutTTY: c.out, TTY: c.tty, NoTTY: c.notty}
		if got := o.terminal(); got != c.want {
			t.Errorf("%+v: terminal %v, want %v", c, got, c.want)
		}
	}
}

// runSpec: the flags of devbox run as the box's spec.
func TestRunSpec(t *testing.T) {
	cfg := &v1.ConfigFile{Config: v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin", "A=image"}, WorkingDir: "/srv", User: "app"}}
	lowers := []string{"/store/layers/top", "/store/layers/base"}
	net := func(driver string) *Network { return &Network{Choice: NetworkChoice{Driver: driver}} }
	for _, c := range []struct {
		name  string
		o     RunOptions
		in    runInputs
		check func(t *testing.T, s *runtime.Spec)
	}{
		{"ephemeral", RunOptions{}, runInputs{Net: net(network.ModeNone)}, func(t *testing.T, s *runtime.Spec) {
			if !s.Remove || !s.ScratchInMemory || s.ScratchBytes != 0 || s.Hostname != "devbox" || s.Name != "" {
				t.Errorf("remove %v, scratch in memory %v (%d bytes), hostname %q, name %q", s.Remove, s.ScratchInMemory, s.ScratchBytes, s.Hostname, s.Name)
			}
			if !slices.Equal(s.Args, []string{"sh"}) || s.Cwd != "/srv" || s.User != "app" || s.Terminal {
				t.Errorf("args %v, cwd %q, user %q, terminal %v: want the image's", s.Args, s.Cwd, s.User, s.Terminal)
			}
			if s.Net != network.ModeNone || s.NetFD != 0 || s.Security.ScopeAbstract {
				t.Errorf("net %q fd %d scope abstract %v", s.Net, s.NetFD, s.Security.ScopeAbstract)
			}
		}},
		{"memory limit bounds the scratch", RunOptions{Limits: cgroup.Limits{Memory: 64 << 20}}, runInputs{Net: net(network.ModeNone)}, func(t *testing.T, s *runtime.Spec) {
			if s.ScratchBytes != 64<<20 {
				t.Errorf("scratch bytes %d", s.ScratchBytes)
			}
		}},
		{"scratch on disk", RunOptions{}, runInputs{Net: net(network.ModeNone), ScratchOnDisk: true}, func(t *testing.T, s *runtime.Spec) {
			if !s.Remove || s.ScratchInMemory {
				t.Errorf("remove %v scratch in memory %v", s.Remove, s.ScratchInMemory)
			}
		}},
		{"--name keeps the box", RunOptions{Name: "web", Limits: cgroup.Limits{Memory: 64 << 20}}, runInputs{Net: net(network.ModeNone)}, func(t *testing.T, s *runtime.Spec) {
			if s.Remove || s.ScratchInMemory || s.ScratchBytes != 0 || s.Name != "web" || s.Hostname != "web" {
				t.Errorf("remove %v scratch %v/%d name %q hostname %q", s.Remove, s.ScratchInMemory, s.ScratchBytes, s.Name, s.Hostname)
			}
		}},
		{"--keep", RunOptions{Keep: true, Hostname: "h"}, runInputs{Net: net(network.ModeNone)}, func(t *testing.T, s *runtime.Spec) {
			if s.Remove || s.ScratchInMemory || s.Hostname != "h" {
				t.Errorf("remove %v scratch %v hostname %q", s.Remove, s.ScratchInMemory, s.Hostname)
			}
		}},
		{"command, workdir, user, env, terminal", RunOptions{Cmd: []string{"id", "-u"}, Workdir: "/tmp", User: "0:0", Env: []string{"A=flag", "B"}},
			runInputs{Net: net(network.ModeNone), Terminal: true, HostEnv: []string{"B=host", "SECRET=x"}}, func(t *testing.T, s *runtime.Spec) {
				if !slices.Equal(s.Args, []string{"id", "-u"}) || s.Cwd != "/tmp" || s.User != "0:0" || !s.Terminal {
					t.Errorf("args %v cwd %q user %q terminal %v", s.Args, s.Cwd, s.User, s.Terminal)
				}
				if !slices.Contains(s.Env, "A=flag") || !slices.Contains(s.Env, "B=host") || slices.Contains(s.Env, "SECRET=x") {
					t.Errorf("env %v: want A=flag, B copied from the host, nothing else of the host's", s.Env)
				}
			}},
		{"--net host", RunOptions{}, runInputs{Net: net(network.ModeHost)}, func(t *testing.T, s *runtime.Spec) {
			if s.Net != network.ModeHost || !s.Security.ScopeAbstract || s.NetFD != 0 {
				t.Errorf("net %q scope abstract %v fd %d: a sandbox on the host's network is scoped", s.Net, s.Security.ScopeAbstract, s.NetFD)
			}
		}},
		{"user-mode network", RunOptions{}, runInputs{Net: net(network.DriverGvisor), ResolvConf: "nameserver 127.0.0.53\n"}, func(t *testing.T, s *runtime.Spec) {
			if s.Net != network.DriverGvisor || s.NetFD != 3 || s.Security.ScopeAbstract {
				t.Errorf("net %q fd %d scope abstract %v: the handshake is the init's fd 3", s.Net, s.NetFD, s.Security.ScopeAbstract)
			}
			if strings.Contains(s.ResolvConf, "127.0.0.53") || !strings.Contains(s.Hosts, "devbox") {
				t.Errorf("resolv.conf %q hosts %q: the box's, not the host's loopback resolver", s.ResolvConf, s.Hosts)
			}
		}},
		{"devices", RunOptions{Devices: []string{"/dev/null"}}, runInputs{Net: net(network.ModeNone)}, func(t *testing.T, s *runtime.Spec) {
			if len(s.Mounts) != 1 || s.Mounts[0].Source != "/dev/null" || s.Mounts[0].Target != "/dev/null" {
				t.Errorf("mounts %+v", s.Mounts)
			}
		}},
		{"security", RunOptions{}, runInputs{Net: net(network.ModeNone), Security: runtime.Security{Caps: []string{"CAP_NET_RAW"}, Unconfined: true}}, func(t *testing.T, s *runtime.Spec) {
			if !slices.Equal(s.Security.Caps, []string{"CAP_NET_RAW"}) || !s.Security.Unconfined {
				t.Errorf("security %+v", s.Security)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			in.ID, in.Dir, in.Lowers = "0123456789abcdef0123", "/store/containers/0123456789abcdef0123", lowers
			in.Net.Choice.Hostname = runtime.Hostname(c.o.Hostname, c.o.Name)
			s, err := runSpec(cfg, &c.o, in)
			if err != nil {
				t.Fatal(err)
			}
			if s.ID != in.ID || s.ContainerDir != in.Dir || !slices.Equal(s.Lowers, lowers) {
				t.Errorf("id %q dir %q lowers %v", s.ID, s.ContainerDir, s.Lowers)
			}
			c.check(t, s)
		})
	}
}

// runSpec's refusals are input errors.
func TestRunSpecErrors(t *testing.T) {
	none := &Network{Choice: NetworkChoice{Driver: network.ModeNone}}
	for _, c := range []struct {
		cfg  v1.Config
		o    RunOptions
		want string
	}{
		{v1.Config{}, RunOptions{}, "no command to run"},
		{v1.Config{Cmd: []string{"sh"}}, RunOptions{Workdir: "tmp"}, "invalid --workdir"},
		{v1.Config{Cmd: []string{"sh"}}, RunOptions{Hostname: strings.Repeat("h", 65)}, "invalid --hostname"},
	} {
		_, err := runSpec(&v1.ConfigFile{Config: c.cfg}, &c.o, runInputs{Net: none})
		if err == nil || !strings.Contains(err.Error(), c.want) || !IsInput(err) {
			t.Errorf("%+v: %v, want an input error with %q", c.o, err, c.want)
		}
	}
}

// A replay may make a run's cgroup only as a plain mkdir it can repeat.
func TestReplayCgroupBase(t *testing.T) {
	sub := &cgroup.Box{Root: "/sys/fs/cgroup", Path: "/user.slice/devbox.scope/devbox-0123", Kind: cgroup.Shared}
	for _, c := range []struct {
		name     string
		cg       *cgroup.Box
		l        cgroup.Limits
		joinable bool
		want     string
	}{
		{"no cgroup", nil, cgroup.Limits{}, true, ""},
		{"shared base", sub, cgroup.Limits{}, true, "/sys/fs/cgroup/user.slice/devbox.scope"},
		{"limits", sub, cgroup.Limits{PidsLimit: 10}, true, ""},
		{"not joinable", sub, cgroup.Limits{}, false, ""},
		{"a scope of its own", &cgroup.Box{Root: "/sys/fs/cgroup", Path: "/user.slice/devbox-0123.scope", Kind: cgroup.Scope}, cgroup.Limits{}, true, ""},
	} {
		if got := replayCgroupBase(c.cg, c.l, c.joinable); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// Manager.Run refuses bad flags and a taken name before it starts
// anything: no run lock, no box directory.
func TestRunRefusesEarly(t *testing.T) {
	m := testManager(t, subIDs, Settings{})
	storedBox(t, m, "taken", nil)
	for _, c := range []struct {
		o    RunOptions
		want string
	}{
		{RunOptions{Image: "busybox", Pull: "maybe", Net: network.ModeNone}, "invalid --pull"},
		{RunOptions{Image: "busybox", Pull: "missing", Net: "bridge"}, "invalid --net"},
		{RunOptions{Image: "busybox", Pull: "missing", Net: network.ModeNone, Name: "taken"}, `"taken" already exists`},
	} {
		res, err := m.Run(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || !IsInput(err) || res != (RunResult{}) {
			t.Errorf("%+v: %+v, %v, want an input error with %q", c.o, res, err, c.want)
		}
	}
	if runs := m.st.LiveRuns(); len(runs) != 0 {
		t.Errorf("runs %+v left", runs)
	}
	ents, err := os.ReadDir(m.st.ContainersDir())
	if err != nil || len(ents) != 1 {
		t.Errorf("containers: %v %v, want the stored box's directory only", ents, err)
	}
}

// What a replay may repeat (docs/architecture.md, "Replay").
func TestReplayable(t *testing.T) {
	eph := func(edit func(*runtime.Spec)) *runtime.Spec {
		s := &runtime.Spec{Remove: true, ScratchInMemory: true}
		if edit != nil {
			edit(s)
		}
		return s
	}
	for _, c := range []struct {
		name      string
		pull      string
		spec      *runtime.Spec
		hasCgroup bool
		cgBase    string
		want      bool
	}{
		{"ephemeral", "missing", eph(nil), false, "", true},
		{"pull never", "never", eph(nil), false, "", true},
		{"pull always", "always", eph(nil), false, "", false},
		{"terminal", "missing", eph(func(s *runtime.Spec) { s.Terminal = true }), false, "", false},
		{"kept", "missing", eph(func(s *runtime.Spec) { s.Remove, s.ScratchInMemory = false, false }), false, "", false},
		{"scratch on disk", "missing", eph(func(s *runtime.Spec) { s.ScratchInMemory = false }), false, "", false},
		{"cgroup in a delegated base", "missing", eph(nil), true, "/sys/fs/cgroup/user.slice/devbox.scope", true},
		{"cgroup a replay cannot make", "missing", eph(nil), true, "", false},
		{"seccomp unconfined", "missing", eph(func(s *runtime.Spec) { s.Security.Unconfined = true }), false, "", false},
		{"capabilities added", "missing", eph(func(s *runtime.Spec) { s.Security.Caps = []string{"CAP_NET_RAW"} }), false, "", true},
		// A spare runs the init from its file (TestEscapeInitExeOverwrite).
		{"may trace its init", "missing", eph(func(s *runtime.Spec) { s.Security.Caps = []string{"CAP_SYS_PTRACE"} }), false, "", false},
	} {
		if got := replayable(&RunOptions{Pull: c.pull}, c.spec, c.hasCgroup, c.cgBase); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A run starts from a spare only where a spare's box is a cold start's:
// its init may join the box's cgroup, no terminal, and the default
// seccomp filter (boxes of one holder share its user keyrings, which only
// the filter keeps them from).
func TestWarmable(t *testing.T) {
	for _, c := range []struct {
		name               string
		sec                runtime.Security
		joinable, terminal bool
		want               bool
	}{
		{"default", runtime.Security{}, true, false, true},
		{"capabilities added", runtime.Security{Caps: []string{"CAP_NET_RAW"}, AllowSetuid: true}, true, false, true},
		{"may trace its init", runtime.Security{Caps: []string{"CAP_SYS_PTRACE"}}, true, false, false},
		{"seccomp unconfined", runtime.Security{Unconfined: true}, true, false, false},
		{"a terminal", runtime.Security{}, true, true, false},
		{"a cgroup the spare cannot join", runtime.Security{}, false, false, false},
	} {
		if got := warmable(c.sec, c.joinable, c.terminal); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A run's init: its status and spec pipes follow the descriptors before
// them, and its arguments say where they are.
func TestLaunchPipes(t *testing.T) {
	for _, n := range []int{0, 1} {
		l := &launched{}
		args, ends, err := l.pipes(n, "/store/containers/x")
		if err != nil {
			t.Fatal(err)
		}
		status, spec := strconv.Itoa(3+n), strconv.Itoa(4+n)
		if !slices.Equal(args, []string{"fd:" + spec, status, "/store/containers/x"}) || len(ends) != 2 {
			t.Errorf("%d files before: args %v, %d ends", n, args, len(ends))
		}
		// The init's ends: status written, spec read.
		if _, err := ends[0].Write([]byte("42")); err != nil {
			t.Error(err)
		}
		if _, err := l.specW.Write([]byte("{}")); err != nil {
			t.Error(err)
		}
		var b [2]byte
		if _, err := l.statusR.Read(b[:]); err != nil || string(b[:]) != "42" {
			t.Errorf("status pipe: %q %v", b, err)
		}
		if _, err := ends[1].Read(b[:]); err != nil || string(b[:]) != "{}" {
			t.Errorf("spec pipe: %q %v", b, err)
		}
		ends[0].Close()
		ends[1].Close()
		l.closePipes()
	}
}

// The warm path is asked only for a run that allows it, with the
// descriptors a holder's spare is handed (no network handshake here).
func TestWarmStart(t *testing.T) {
	none := &Network{Choice: NetworkChoice{Driver: network.ModeNone}}
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if w := warmStart(launchOptions{Net: none, Warm: false}, 0); w != nil {
		t.Errorf("not allowed: %+v", w)
	}
	w := warmStart(launchOptions{Net: none, Warm: true}, 0)
	if w == nil || w.RuntimeDir != "/run/user/1000" || w.Handshake {
		t.Errorf("no network: %+v", w)
	}
	// A descriptor that is no network helper's handshake: cold.
	if w := warmStart(launchOptions{Net: none, Warm: true}, 1); w != nil {
		t.Errorf("one descriptor without a helper: %+v", w)
	}
	t.Setenv("XDG_RUNTIME_DIR", "run/user/1000")
	if w := warmStart(launchOptions{Net: none, Warm: true}, 0); w != nil {
		t.Errorf("relative XDG_RUNTIME_DIR: %+v", w)
	}
}
