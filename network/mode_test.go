package network

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// fakeHost has exactly the programs listed.
func fakeHost(progs ...string) Host {
	return Host{LookPath: func(name string) (string, error) {
		for _, p := range progs {
			if p == name {
				return "/usr/bin/" + name, nil
			}
		}
		return "", exec.ErrNotFound
	}}
}

func TestSelect(t *testing.T) {
	all := fakeHost("pasta", "slirp4netns", "nsenter", "ip")
	tests := []struct {
		name    string
		mode    string
		host    Host
		needs   Needs
		want    string
		wantErr string
	}{
		{"none", "none", all, Needs{}, ModeNone, ""},
		{"host", "HOST", all, Needs{}, ModeHost, ""},
		{"private is none", "private", all, Needs{}, ModeNone, ""},
		{"auto takes the first of AutoOrder", "slirp", all, Needs{}, AutoOrder[0], ""},
		{"auto with nothing installed", "slirp", fakeHost(), Needs{}, DriverGvisor, ""},
		{"auto with custom DNS", "slirp", all, Needs{CustomDNS: true}, DriverGvisor, ""},
		{"gvisor needs nothing", "gvisor", fakeHost(), Needs{}, DriverGvisor, ""},
		{"gvisor alias", "gvisor-tap-vsock", fakeHost(), Needs{}, DriverGvisor, ""},
		{"pasta present", "pasta", fakeHost("pasta"), Needs{}, DriverPasta, ""},
		{"pasta missing", "pasta", fakeHost("slirp4netns"), Needs{}, "", "pasta is not installed"},
		{"slirp4netns present", "slirp4netns", fakeHost("slirp4netns", "nsenter", "ip"), Needs{}, DriverSlirp4netns, ""},
		{"slirp4netns missing", "slirp4netns", fakeHost("pasta"), Needs{}, "", "slirp4netns is not installed"},
		{"pasta with custom DNS", "pasta", all, Needs{CustomDNS: true}, "", "[network] dns"},
		{"unknown", "bridge", all, Needs{}, "", "invalid --net"},
		{"empty", "", all, Needs{}, "", "invalid --net"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Select(tt.mode, tt.host, tt.needs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "hint:") {
					t.Fatalf("Select(%q) = %q, %v; want an error with a hint mentioning %q", tt.mode, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Select(%q) = %q, %v; want %q", tt.mode, got, err, tt.want)
			}
			if got != ModeNone && got != ModeHost && !IsUserMode(got) {
				t.Fatalf("Select(%q) = %q: not something a box spec carries", tt.mode, got)
			}
		})
	}
}

func TestSelectMissingIsTyped(t *testing.T) {
	_, err := Select("pasta", fakeHost(), Needs{})
	if !errors.Is(err, ErrDriverMissing) {
		t.Fatalf("err = %v, want ErrDriverMissing", err)
	}
}

// The automatic order must hold the driver that needs nothing, so that
// "slirp" always works.
func TestAutoOrderHasGvisor(t *testing.T) {
	found := false
	for _, d := range AutoOrder {
		if !IsUserMode(d) {
			t.Errorf("AutoOrder has %q, not a user-mode driver", d)
		}
		found = found || d == DriverGvisor
	}
	if !found {
		t.Error("AutoOrder lacks the gvisor driver, which always works")
	}
}

func TestModesAreValid(t *testing.T) {
	for _, m := range Modes {
		if err := ValidateMode(m); err != nil {
			t.Errorf("%q: %v", m, err)
		}
	}
}
