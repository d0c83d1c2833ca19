// Package configpath says where devbox's configuration file and store are,
// from the environment alone: cmd/config reads the file there, and devbox's
// front (cmd/devbox), which does not link the TOML reader, finds the same
// file and store without reading it (docs/architecture.md, "Front").
package configpath

import (
	"fmt"
	"os"
	"path/filepath"
)

// Path returns the configuration file's path: DEVBOX_CONFIG, else
// $XDG_CONFIG_HOME/devbox/config.toml.
func Path() string {
	if p := os.Getenv("DEVBOX_CONFIG"); p != "" {
		return p
	}
	return filepath.Join(configHome(), "devbox", "config.toml")
}

func configHome() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config")
}

// DataHome is $XDG_DATA_HOME, else ~/.local/share.
func DataHome() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share")
}

// StoreRoot returns the store directory: flag, then DEVBOX_STORE, then
// configured (the configuration's [store] root), then
// $XDG_DATA_HOME/devbox. A relative path is an error: it would name
// another store in every directory devbox is run from.
func StoreRoot(flag, configured string) (string, error) {
	var root, from string
	switch {
	case flag != "":
		root, from = flag, "--store"
	case os.Getenv("DEVBOX_STORE") != "":
		root, from = os.Getenv("DEVBOX_STORE"), "DEVBOX_STORE"
	case configured != "":
		root, from = configured, "[store] root in "+Path()
	default:
		root, from = filepath.Join(DataHome(), "devbox"), "the default store ($XDG_DATA_HOME/devbox)"
	}
	if !filepath.IsAbs(root) {
		hint := "give an absolute path"
		if abs, err := filepath.Abs(root); err == nil && from != "the default store ($XDG_DATA_HOME/devbox)" {
			hint += fmt.Sprintf(", e.g. %s", abs)
		} else {
			hint = "set HOME or XDG_DATA_HOME to an absolute path"
		}
		return "", fmt.Errorf("%s: store %q is not an absolute path (hint: %s)", from, root, hint)
	}
	return filepath.Clean(root), nil
}
