package configpath

import (
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	for _, c := range []struct {
		config, xdg, home, want string
	}{
		{"/etc/devbox.toml", "/x", "/home/me", "/etc/devbox.toml"},
		{"", "/x", "/home/me", "/x/devbox/config.toml"},
		{"", "relative", "/home/me", "/home/me/.config/devbox/config.toml"},
		{"", "", "/home/me", "/home/me/.config/devbox/config.toml"},
	} {
		t.Setenv("DEVBOX_CONFIG", c.config)
		t.Setenv("XDG_CONFIG_HOME", c.xdg)
		t.Setenv("HOME", c.home)
		if got := Path(); got != c.want {
			t.Errorf("DEVBOX_CONFIG=%q XDG_CONFIG_HOME=%q HOME=%q: Path = %q, want %q", c.config, c.xdg, c.home, got, c.want)
		}
	}
}

func TestStoreRoot(t *testing.T) {
	t.Setenv("HOME", "/home/me")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("DEVBOX_CONFIG", "/c.toml")
	for _, c := range []struct {
		flag, env, configured string
		want, err             string
	}{
		{flag: "/f/", env: "/e", configured: "/c", want: "/f"},
		{env: "/e", configured: "/c", want: "/e"},
		{configured: "/c/./d", want: "/c/d"},
		{want: "/home/me/.local/share/devbox"},
		{flag: "rel", err: "--store: store \"rel\" is not an absolute path (hint: give an absolute path, e.g. /"},
		{env: "rel", err: "DEVBOX_STORE: store \"rel\""},
		{configured: "rel", err: "[store] root in /c.toml: store \"rel\""},
	} {
		t.Setenv("DEVBOX_STORE", c.env)
		got, err := StoreRoot(c.flag, c.configured)
		switch {
		case c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)):
			t.Errorf("%+v: %v, want an error starting %q", c, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%+v: %q, %v; want %q", c, got, err, c.want)
		}
	}
}
