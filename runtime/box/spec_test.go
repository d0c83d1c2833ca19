package box

import (
	"reflect"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/runtime"
	"github.com/devbox-dev/devbox/runtime/device"
)

func TestSpecMounts(t *testing.T) {
	acct := runtime.Account{Name: "me", UID: 1000, GID: 1000, Home: "/home/me", Shell: "/bin/zsh"}
	present := map[string]bool{
		"/run/user/1000": true, "/tmp/.X11-unix": true, "/tmp/ssh-x/agent.1": true, "/etc/localtime": true,
		"/home/me/.ssh/agent.sock": true, "/run/user/1000/.mutter-Xwaylandauth.1": true,
	}
	sockets := map[string]bool{
		"/run/user/1000/wayland-1": true, "/run/user/1000/pipewire-0": true, "/run/user/1000/pulse/native": true,
		"/run/user/1000/bus": true, "/tmp/ssh-x/agent.1": true, "/home/me/.ssh/agent.sock": true,
		"/run/user/1000/devbox/0123456789abcdef/agent.sock": true, "/run/user/1000/keyring/ssh": true,
		"/run/user/1000/elsewhere": true,
	}
	desktop := []string{"XDG_RUNTIME_DIR=/run/user/1000", "DISPLAY=:0", "WAYLAND_DISPLAY=wayland-1",
		"SSH_AUTH_SOCK=/tmp/ssh-x/agent.1", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus",
		"XAUTHORITY=/run/user/1000/.mutter-Xwaylandauth.1"}
	cases := []struct {
		name    string
		rec     Record
		env     []string
		devices []string
		want    []string // "source->target[:ro]"; "tmpfs->target" for Tmpfs
		absent  []string // sources or targets
	}{
		{"desktop session", Record{Name: "dev", Hostname: "dev"}, desktop, []string{"/dev/dri"},
			[]string{"/home/me->/home/me", "tmpfs->/run/user/1000", "/run/user/1000/wayland-1->/run/user/1000/wayland-1",
				"/run/user/1000/pipewire-0->/run/user/1000/pipewire-0", "/run/user/1000/pulse/native->/run/user/1000/pulse/native",
				"/run/user/1000/bus->/run/user/1000/bus", "/tmp/.X11-unix->/tmp/.X11-unix:ro", "/tmp/ssh-x/agent.1->/tmp/ssh-x/agent.1",
				"/run/user/1000/.mutter-Xwaylandauth.1->/run/user/1000/.mutter-Xwaylandauth.1:ro",
				"/dev/dri->/dev/dri", "/real/zone->/etc/localtime:ro"},
			[]string{"/run/user/1000->", "/run/user/1000/devbox", "/run/user/1000/elsewhere"}},
		{"the agent in the runtime directory, never devbox's state", Record{Name: "dev", Hostname: "dev"},
			[]string{"XDG_RUNTIME_DIR=/run/user/1000", "SSH_AUTH_SOCK=/run/user/1000/keyring/ssh",
				"WAYLAND_DISPLAY=devbox/0123456789abcdef/agent.sock", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/devbox/0123456789abcdef/agent.sock"}, nil,
			[]string{"tmpfs->/run/user/1000", "/run/user/1000/keyring/ssh->/run/user/1000/keyring/ssh"},
			[]string{"/run/user/1000/devbox"}},
		{"not sockets: not bound", Record{Name: "dev", Hostname: "dev"},
			[]string{"XDG_RUNTIME_DIR=/run/user/1000", "WAYLAND_DISPLAY=../../../etc", "SSH_AUTH_SOCK=/etc/passwd"}, nil,
			[]string{"tmpfs->/run/user/1000"},
			[]string{"/etc->", "/etc/passwd->"}},
		{"separate home: sandboxed, no desktop", Record{Name: "w", Hostname: "w", Home: "/data/boxhome", Volumes: []Volume{{Source: "/srv", Target: "/srv", ReadOnly: true}}},
			desktop, nil,
			[]string{"/data/boxhome->/home/me", "/srv->/srv:ro", "/real/zone->/etc/localtime:ro"},
			[]string{"/tmp/.X11-unix", "/tmp/ssh-x/agent.1", "/run/user/1000"}},
		{"separate home with --desktop", Record{Name: "w", Hostname: "w", Home: "/data/boxhome", Desktop: true}, desktop, nil,
			[]string{"/data/boxhome->/home/me", "tmpfs->/run/user/1000", "/run/user/1000/wayland-1->/run/user/1000/wayland-1"},
			// What starts programs on the host stays outside a sandbox:
			// the session bus, X11 (and its cookie), the SSH agent, and
			// the audio servers, which load modules a client asks for.
			[]string{"/run/user/1000->", "/run/user/1000/bus", "/tmp/.X11-unix", "/tmp/ssh-x/agent.1", "/run/user/1000/.mutter-Xwaylandauth.1",
				"/run/user/1000/pipewire-0", "/run/user/1000/pulse"}},
		{"separate home with --desktop --audio", Record{Name: "w", Hostname: "w", Home: "/data/boxhome", Desktop: true, Audio: true}, desktop, nil,
			[]string{"/data/boxhome->/home/me", "tmpfs->/run/user/1000", "/run/user/1000/wayland-1->/run/user/1000/wayland-1",
				"/run/user/1000/pipewire-0->/run/user/1000/pipewire-0", "/run/user/1000/pulse/native->/run/user/1000/pulse/native"},
			[]string{"/run/user/1000->", "/run/user/1000/bus", "/tmp/.X11-unix", "/tmp/ssh-x/agent.1", "/run/user/1000/.mutter-Xwaylandauth.1"}},
		{"agent in the home: the home carries it", Record{Name: "w", Hostname: "w"},
			[]string{"SSH_AUTH_SOCK=/home/me/.ssh/agent.sock"}, nil,
			[]string{"/home/me->/home/me"},
			[]string{"/tmp/.X11-unix", "/home/me/.ssh/agent.sock", "/run/user/1000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Host{Account: acct, Env: c.env, Devices: c.devices,
				Exists: func(p string) bool { return present[p] || sockets[p] }, Socket: func(p string) bool { return sockets[p] },
				Resolve: func(p string) string {
					if p == "/etc/localtime" {
						return "/real/zone"
					}
					return p
				}}
			s, err := Spec(&c.rec, []string{"/l1"}, "/boxdir", h)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Agent || s.Account == nil || s.Account.Name != "me" || s.GraceSeconds != DefaultGrace || s.Net != "host" {
				t.Errorf("spec basics: %+v", s)
			}
			got := map[string]bool{}
			for _, m := range s.Mounts {
				k := m.Source + "->" + m.Target
				if m.Tmpfs {
					k = "tmpfs->" + m.Target
				}
				if m.ReadOnly {
					k += ":ro"
				}
				got[k] = true
			}
			for _, w := range c.want {
				if !got[w] {
					t.Errorf("missing mount %s in %v", w, got)
				}
			}
			for _, a := range c.absent {
				for k := range got {
					if strings.HasPrefix(k, a) || strings.Contains(k, "->"+a) {
						t.Errorf("unexpected mount %s", k)
					}
				}
			}
		})
	}
}

func TestSessionEnv(t *testing.T) {
	r := &Record{Name: "dev", Env: []string{"PATH=/usr/bin:/bin", "IMAGE_VAR=1"}}
	acct := runtime.Account{Name: "me", Home: "/home/me", Shell: "/bin/zsh"}
	caller := []string{"TERM=xterm-kitty", "DISPLAY=:1", "LC_ALL=C.UTF-8", "AWS_SECRET_ACCESS_KEY=x", "HOME=/elsewhere", "PATH=/host/bin"}
	env := strings.Join(SessionEnv(r, acct, caller, false), "\n") + "\n"
	for _, w := range []string{"PATH=/usr/bin:/bin\n", "IMAGE_VAR=1\n", "TERM=xterm-kitty\n", "DISPLAY=:1\n", "LC_ALL=C.UTF-8\n", "HOME=/home/me\n", "USER=me\n", "SHELL=/bin/zsh\n", "DEVBOX_NAME=dev\n"} {
		if !strings.Contains(env, w) {
			t.Errorf("missing %q in\n%s", w, env)
		}
	}
	for _, bad := range []string{"AWS_SECRET", "/host/bin", "/elsewhere"} {
		if strings.Contains(env, bad) {
			t.Errorf("%q leaked into\n%s", bad, env)
		}
	}
	root := strings.Join(SessionEnv(r, acct, caller, true), "\n")
	if !strings.Contains(root, "HOME=/root") || !strings.Contains(root, "USER=root") {
		t.Errorf("root session env: %s", root)
	}
}

func TestBusPath(t *testing.T) {
	for in, want := range map[string]string{
		"unix:path=/run/user/1000/bus":             "/run/user/1000/bus",
		"unix:abstract=/tmp/x,guid=1;unix:path=/b": "/b",
		"tcp:host=x": "",
		"":           "",
	} {
		if got := busPath(in); got != want {
			t.Errorf("busPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// A locale provisioning could not install becomes C.UTF-8 in sessions;
// other locales pass unchanged.
func TestSessionEnvLangFallback(t *testing.T) {
	acct := runtime.Account{Name: "me", UID: 1000, GID: 1000, Home: "/home/me", Shell: "/bin/bash"}
	caller := []string{"LANG=de_DE.UTF-8", "LC_TIME=de_DE.UTF-8", "LC_NUMERIC=en_US.UTF-8"}
	get := func(env []string, k string) string {
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return kv[len(k)+1:]
			}
		}
		return ""
	}
	for _, c := range []struct {
		p                 *provision.State
		lang, time, numer string
	}{
		{nil, "de_DE.UTF-8", "de_DE.UTF-8", "en_US.UTF-8"},
		{&provision.State{Lang: "de_DE.UTF-8"}, "de_DE.UTF-8", "de_DE.UTF-8", "en_US.UTF-8"},
		{&provision.State{Lang: "de_DE.UTF-8", LangFallback: true}, "C.UTF-8", "C.UTF-8", "en_US.UTF-8"},
		{&provision.State{Lang: "fr_FR.UTF-8", LangFallback: true}, "de_DE.UTF-8", "de_DE.UTF-8", "en_US.UTF-8"},
	} {
		env := SessionEnv(&Record{Name: "b", Provision: c.p}, acct, caller, false)
		if get(env, "LANG") != c.lang || get(env, "LC_TIME") != c.time || get(env, "LC_NUMERIC") != c.numer {
			t.Errorf("%+v: LANG=%s LC_TIME=%s LC_NUMERIC=%s", c.p, get(env, "LANG"), get(env, "LC_TIME"), get(env, "LC_NUMERIC"))
		}
	}
}

// A dev box gets the NVIDIA driver (devices read-write, libraries and
// programs read-only) and the GPU nodes; a sandboxed box gets none of it.
func TestSpecGPU(t *testing.T) {
	acct := runtime.Account{Name: "me", UID: 1000, GID: 1000, Home: "/home/me", Shell: "/bin/bash"}
	nv := &device.NVIDIA{Version: "535.54.03", Devices: []string{"/dev/nvidia0", "/dev/nvidiactl"},
		Libraries: []string{"/usr/lib/x86_64-linux-gnu/libcuda.so.535.54.03"}, Programs: []string{"/usr/bin/nvidia-smi"},
		LibDirs: []string{"/usr/lib/x86_64-linux-gnu"}}
	h := Host{Account: acct, Devices: []string{"/dev/dri"}, NVIDIA: nv}
	want := map[string]bool{"/dev/dri": false, "/dev/nvidia0": false, "/dev/nvidiactl": false,
		"/usr/lib/x86_64-linux-gnu/libcuda.so.535.54.03": true, "/usr/bin/nvidia-smi": true}
	for _, c := range []struct {
		name string
		r    *Record
		dev  bool
	}{
		{"dev box", &Record{Name: "d", Hostname: "d"}, true},
		{"own home", &Record{Name: "d", Hostname: "d", Home: "/home/me"}, true},
		{"sandbox", &Record{Name: "s", Hostname: "s", Home: "/srv/boxes/s"}, false},
	} {
		s, err := Spec(c.r, []string{"/l"}, "/b", h)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, m := range s.Mounts {
			if _, ok := want[m.Target]; ok {
				got[m.Target] = m.ReadOnly
			}
		}
		if c.dev && !reflect.DeepEqual(got, want) || !c.dev && len(got) != 0 {
			t.Errorf("%s: GPU mounts %v", c.name, got)
		}
		if dirs := LinkerDirs(c.r, h); c.dev != (len(dirs) == 1) {
			t.Errorf("%s: linker dirs %q", c.name, dirs)
		}
	}
}

// devbox-host's socket and program go into dev boxes only.
func TestSpecHostExec(t *testing.T) {
	acct := runtime.Account{Name: "me", UID: 1000, GID: 1000, Home: "/home/me"}
	const sock, prog = "/run/user/1000/devbox/0123456789abcdef/host.sock", "/run/user/1000/devbox/devbox-init-x/devbox-init"
	for _, c := range []struct {
		name string
		rec  Record
		hx   *HostExec
		want []string
	}{
		{"dev box", Record{Name: "dev", Hostname: "dev"}, &HostExec{Socket: sock, Program: prog, XdgOpen: true},
			[]string{sock + "->/run/devbox/host.sock", prog + "->/usr/local/bin/devbox-host:ro", prog + "->/usr/local/bin/xdg-open:ro"}},
		{"dev box with an xdg-open of its own", Record{Name: "dev", Hostname: "dev"}, &HostExec{Socket: sock, Program: prog},
			[]string{sock + "->/run/devbox/host.sock", prog + "->/usr/local/bin/devbox-host:ro"}},
		{"sandboxed: own home", Record{Name: "sb", Hostname: "sb", Home: "/data/h"}, &HostExec{Socket: sock, Program: prog, XdgOpen: true}, nil},
		{"sandboxed: own home and desktop", Record{Name: "sb", Hostname: "sb", Home: "/data/h", Desktop: true}, &HostExec{Socket: sock, Program: prog, XdgOpen: true}, nil},
		{"no channel", Record{Name: "dev", Hostname: "dev"}, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Spec(&c.rec, []string{"/l1"}, "/boxdir", Host{Account: acct, HostExec: c.hx})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range s.Mounts {
				if m.Source == sock || m.Source == prog {
					k := m.Source + "->" + m.Target
					if m.ReadOnly {
						k += ":ro"
					}
					got = append(got, k)
				}
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("mounts %q, want %q", got, c.want)
			}
		})
	}
}

// A sandboxed box's sessions do not name what it does not get: the
// session bus, X11 and the SSH agent; a dev box's do.
func TestSessionEnvSandboxDrops(t *testing.T) {
	acct := runtime.Account{Name: "me", UID: 1000, GID: 1000, Home: "/home/me", Shell: "/bin/bash"}
	caller := []string{"DISPLAY=:0", "XAUTHORITY=/run/user/1000/xauth", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus",
		"SSH_AUTH_SOCK=/tmp/agent", "WAYLAND_DISPLAY=wayland-0", "TERM=xterm", "PULSE_SERVER=tcp:127.0.0.1:4713", "PIPEWIRE_REMOTE=pipewire-0"}
	for _, c := range []struct {
		name  string
		r     *Record
		want  int // of the four variables
		audio int // of the two audio variables
	}{
		{"dev box", &Record{Name: "d"}, 4, 2},
		{"own home as home", &Record{Name: "d", Home: "/home/me"}, 4, 2},
		{"sandbox with desktop", &Record{Name: "s", Home: "/data/s", Desktop: true}, 0, 0},
		{"sandbox with desktop and audio", &Record{Name: "s", Home: "/data/s", Desktop: true, Audio: true}, 0, 2},
	} {
		env := "\n" + strings.Join(SessionEnv(c.r, acct, caller, false), "\n")
		count := func(keys []string) int {
			n := 0
			for _, k := range keys {
				if strings.Contains(env, "\n"+k+"=") {
					n++
				}
			}
			return n
		}
		if n := count([]string{"DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS", "SSH_AUTH_SOCK"}); n != c.want || !strings.Contains(env, "WAYLAND_DISPLAY=wayland-0") {
			t.Errorf("%s: %d of the session bus, X11 and agent variables (want %d):\n%s", c.name, n, c.want, env)
		}
		if n := count([]string{"PULSE_SERVER", "PIPEWIRE_REMOTE"}); n != c.audio {
			t.Errorf("%s: %d of the audio variables (want %d):\n%s", c.name, n, c.audio, env)
		}
	}
}

// A sandbox that shares the host's network namespace is scoped out of the
// host's abstract unix sockets; a dev box is not, nor a box with a network
// of its own (whose abstract sockets are its own anyway).
func TestSpecScopeAbstract(t *testing.T) {
	acct := runtime.Account{Name: "me", UID: 1000, GID: 1000, Home: "/home/me"}
	for _, c := range []struct {
		name string
		rec  Record
		want bool
	}{
		{"sandbox, host network", Record{Name: "sb", Hostname: "sb", Home: "/data/h", Net: "host"}, true},
		{"sandbox, desktop, host network", Record{Name: "sb", Hostname: "sb", Home: "/data/h", Desktop: true, Net: "host"}, true},
		{"sandbox, record without a network (host)", Record{Name: "sb", Hostname: "sb", Home: "/data/h"}, true},
		{"sandbox, own network", Record{Name: "sb", Hostname: "sb", Home: "/data/h", Net: "slirp"}, false},
		{"sandbox, no network", Record{Name: "sb", Hostname: "sb", Home: "/data/h", Net: "none"}, false},
		{"dev box, host network", Record{Name: "dev", Hostname: "dev", Net: "host"}, false},
		{"dev box given the user's home, host network", Record{Name: "dev", Hostname: "dev", Home: "/home/me", Net: "host"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Spec(&c.rec, []string{"/l1"}, "/boxdir", Host{Account: acct})
			if err != nil {
				t.Fatal(err)
			}
			if s.Security.ScopeAbstract != c.want {
				t.Errorf("ScopeAbstract = %v, want %v", s.Security.ScopeAbstract, c.want)
			}
		})
	}
}
