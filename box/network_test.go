package box

import (
	"errors"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/network"
)

func TestValidateNetworkFlags(t *testing.T) {
	tests := []struct {
		mode    string
		publish []string
		wantErr string
	}{
		{"slirp", []string{"8080:80"}, ""},
		{"gvisor", nil, ""},
		{"host", nil, ""},
		{"host", []string{"8080:80"}, "needs user-mode networking"},
		{"none", []string{"8080:80"}, "needs user-mode networking"},
		{"bridge", nil, "invalid --net"},
		{"slirp", []string{"80"}, "invalid --publish"},
	}
	for _, tt := range tests {
		err := ValidateNetworkFlags(tt.mode, tt.publish)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s %v: %v", tt.mode, tt.publish, err)
			}
			continue
		}
		var fe *InputError
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &fe) {
			t.Errorf("%s %v: %v, want a flag error mentioning %q", tt.mode, tt.publish, err, tt.wantErr)
		}
	}
}

func TestChooseNetworkDefaults(t *testing.T) {
	off := false
	cfg := network.Config{Mode: "none", HostLoopback: &off}
	if m := DefaultMode(cfg, "slirp"); m != "none" {
		t.Errorf("DefaultMode = %q, want the configured none", m)
	}
	if m := DefaultMode(network.Config{}, "slirp"); m != "slirp" {
		t.Errorf("DefaultMode = %q, want the built-in slirp", m)
	}
	c, err := resolveNetwork(cfg, "host", NetworkFlags{})
	if err != nil || c.Driver != network.ModeHost || c.UserMode() || c.HostLoopback || !c.AutoPorts || !c.IPv6 {
		t.Errorf("host: %+v, %v", c, err)
	}
	c, err = resolveNetwork(network.Config{}, "none", NetworkFlags{NoAutoPorts: true, NoHostLoopback: true})
	if err != nil || c.AutoPorts || c.HostLoopback {
		t.Errorf("flags: %+v, %v", c, err)
	}
	o := c.HelperOptions("/run/x")
	if o.RunDir != "/run/x" || o.Driver != network.ModeNone || o.Cgroup != "" {
		t.Errorf("helper options: %+v", o)
	}
	// The helper joins the cgroup the CLI made, which it is told.
	c.Cgroup = "/user.slice/devbox.scope/devbox-ab"
	if o := c.HelperOptions("/run/x"); o.Cgroup != c.Cgroup {
		t.Errorf("helper options without the box's cgroup: %+v", o)
	}
}

func TestHostLoopback(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name       string
		fl         NetworkFlags
		configured *bool
		want       bool
		noRecord   bool // what a new box's record keeps
	}{
		{"dev box", NetworkFlags{}, nil, true, false},
		{"dev box, configured off", NetworkFlags{}, &no, false, false},
		{"dev box, --no-host-loopback", NetworkFlags{NoHostLoopback: true}, nil, false, true},
		{"dev box, --host-loopback over the configuration", NetworkFlags{HostLoopback: true}, &no, true, false},
		{"sandbox", NetworkFlags{Sandboxed: true}, nil, false, true},
		{"sandbox, configured on", NetworkFlags{Sandboxed: true}, &yes, false, true},
		{"sandbox, --host-loopback", NetworkFlags{Sandboxed: true, HostLoopback: true}, nil, true, false},
		{"sandbox, --no-host-loopback", NetworkFlags{Sandboxed: true, NoHostLoopback: true}, &yes, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HostLoopback(tc.fl, tc.configured); got != tc.want {
				t.Errorf("HostLoopback = %v, want %v", got, tc.want)
			}
			if got := RecordNoHostLoopback(tc.fl); got != tc.noRecord {
				t.Errorf("RecordNoHostLoopback = %v, want %v", got, tc.noRecord)
			}
		})
	}
}

func TestValidateNetworkContradiction(t *testing.T) {
	if err := ValidateNetwork("slirp", NetworkFlags{HostLoopback: true, NoHostLoopback: true}); err == nil {
		t.Error("--host-loopback with --no-host-loopback was accepted")
	}
	if err := ValidateNetwork("slirp", NetworkFlags{HostLoopback: true}); err != nil {
		t.Error(err)
	}
}
