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
		{"relative store root", "[store]\nroot = \"data/devbox\"\n", "[store] root \"data/devbox\" is not an absolute path (hint:", nil},
		{"provision", "[provision]\nauto = false\n[provision.repos]\napt = \"deb [trusted=yes] http://h:5080/ ./\"\ndnf = \"http://m/f/\"\n", "",
			func(c *Config) bool {
				return c.Provision.Auto != nil && !*c.Provision.Auto && c.Provision.Repos["apt"] == "deb [trusted=yes] http://h:5080/ ./"
			}},
		{"provision repo of an unknown family", "[provision.repos]\npacman = \"http://m/\"\n", "provision.repos.pacman", nil},
		{"provision repo of two lines", "[provision.repos]\napt = \"deb http://a/ ./\\ndeb http://b/ ./\"\n", "must be one line", nil},
		{"limits", "[limits]\nmax_document_size = \"8MiB\"\nmax_layer_size = 1073741824\nmax_layers = 300\nmax_compression_ratio = 500\n", "",
			func(c *Config) bool {
				l := c.Limits.Resolve("/c.toml")
				return l.DocumentSize == 8<<20 && l.LayerSize == 1<<30 && l.Layers == 300 && l.CompressionRatio == 500 &&
					l.ImageSize == 64<<30 && l.IndexDepth == 2 && l.ConfigPath == "/c.toml"
			}},
		{"limits bad size", "[limits]\nmax_image_size = \"lots\"\n", "max_image_size", nil},
		{"limits negative", "[limits]\nmax_layers = -1\n", "[limits] max_layers is -1 (hint:", nil},
		{"limits unknown", "[limits]\nmax_files = 3\n", "unknown setting \"limits.max_files\"", nil},
		{"absolute store root", "[store]\nroot = \"/srv/devbox\"\n", "", func(c *Config) bool { return c.Store.Root == "/srv/devbox" }},
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
	cases := []struct {
		name, env, data, home, cfg, flag string
		want, wantErr                    string
	}{
		{name: "default", data: "/data", want: "/data/devbox"},
		{name: "default from HOME", home: "/home/u", want: "/home/u/.local/share/devbox"},
		{name: "config", data: "/data", cfg: "/cfg", want: "/cfg"},
		{name: "env", data: "/data", cfg: "/cfg", env: "/env", want: "/env"},
		{name: "flag", data: "/data", cfg: "/cfg", env: "/env", flag: "/flag/", want: "/flag"},
		{name: "relative flag", data: "/data", flag: "store", wantErr: `--store: store "store" is not an absolute path (hint: give an absolute path, e.g. /`},
		{name: "relative env", data: "/data", env: "./s", wantErr: `DEVBOX_STORE: store "./s" is not an absolute path`},
		{name: "relative config", data: "/data", cfg: "s", wantErr: `[store] root in`},
		{name: "no home", wantErr: "set HOME or XDG_DATA_HOME"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DEVBOX_STORE", c.env)
			t.Setenv("XDG_DATA_HOME", c.data)
			t.Setenv("HOME", c.home)
			cfg := &Config{Store: Store{Root: c.cfg}}
			got, err := cfg.StoreRoot(c.flag)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("StoreRoot = %q, %v; want error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("StoreRoot = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
