package box

import (
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/runtime"
)

func TestSpecMounts(t *testing.T) {
	acct := runtime.Account{Name: "me", UID: 1000, GID: 1000, Home: "/home/me", Shell: "/bin/zsh"}
	present := map[string]bool{
		"/run/user/1000": true, "/tmp/.X11-unix": true, "/tmp/ssh-x/agent.1": true, "/etc/localtime": true,
		"/home/me/.ssh/agent.sock": true,
	}
	cases := []struct {
		name    string
		rec     Record
		env     []string
		devices []string
		want    []string // "source->target[:ro]"
		absent  []string
	}{
		{"desktop session", Record{Name: "dev", Hostname: "dev"},
			[]string{"XDG_RUNTIME_DIR=/run/user/1000", "DISPLAY=:0", "SSH_AUTH_SOCK=/tmp/ssh-x/agent.1", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"},
			[]string{"/dev/dri"},
			[]string{"/home/me->/home/me", "/run/user/1000->/run/user/1000", "/tmp/.X11-unix->/tmp/.X11-unix:ro", "/tmp/ssh-x/agent.1->/tmp/ssh-x/agent.1", "/dev/dri->/dev/dri", "/real/zone->/etc/localtime:ro"},
			[]string{"/run/user/1000/bus"}},
		{"separate home and volumes, no display", Record{Name: "w", Hostname: "w", Home: "/data/boxhome", Volumes: []Volume{{Source: "/srv", Target: "/srv", ReadOnly: true}}},
			[]string{"SSH_AUTH_SOCK=/home/me/.ssh/agent.sock"}, nil,
			[]string{"/data/boxhome->/home/me", "/srv->/srv:ro"},
			[]string{"/tmp/.X11-unix", "/home/me/.ssh/agent.sock", "/run/user/1000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Host{Account: acct, Env: c.env, Devices: c.devices,
				Exists: func(p string) bool { return present[p] }, Resolve: func(string) string { return "/real/zone" }}
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
					if strings.HasPrefix(k, a+"->") {
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
