package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, body, wantErr string
		check               func(*Config) bool
	}{
		{"missing file", "", "", func(c *Config) bool { return len(c.Aliases) == 0 }},
		{"mirrors", "[registries]\ninsecure = [\"127.0.0.1:5000\"]\n[registries.mirrors]\n\"docker.io\" = [\"127.0.0.1:5000\"]\n", "",
			func(c *Config) bool {
				return c.Registries.Mirrors["docker.io"][0] == "127.0.0.1:5000" && c.Registries.Insecure[0] == "127.0.0.1:5000"
			}},
		{"aliases", "[aliases]\nmine = \"example.com/x:1\"\n", "", func(c *Config) bool { return c.Aliases["mine"] == "example.com/x:1" }},
		{"syntax", "[registries\n", "line 2", nil},
		{"unknown key", "[store]\nroot = \"/x\"\nbogus = 1\n", "unknown setting", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".toml")
			if c.body != "" {
				if err := os.WriteFile(p, []byte(c.body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := Load(p)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Errorf("unexpected config %+v", cfg)
			}
		})
	}
}

func TestStoreRoot(t *testing.T) {
	t.Setenv("DEVBOX_STORE", "")
	t.Setenv("XDG_DATA_HOME", "/data")
	c := &Config{}
	if got := c.StoreRoot(""); got != "/data/devbox" {
		t.Errorf("default = %q", got)
	}
	c.Store.Root = "/cfg"
	if got := c.StoreRoot(""); got != "/cfg" {
		t.Errorf("config = %q", got)
	}
	t.Setenv("DEVBOX_STORE", "/env")
	if got := c.StoreRoot(""); got != "/env" {
		t.Errorf("env = %q", got)
	}
	if got := c.StoreRoot("/flag"); got != "/flag" {
		t.Errorf("flag = %q", got)
	}
}
