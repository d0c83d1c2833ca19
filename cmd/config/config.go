// Package config reads devbox's configuration file,
// $XDG_CONFIG_HOME/devbox/config.toml (DEVBOX_CONFIG overrides the path).
// A missing file is an empty configuration; a malformed one is an error that
// names the file and the line.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"strings"

	"github.com/BurntSushi/toml"
	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/internal/configpath"
	"github.com/devbox-dev/devbox/provision"
)

// Config is the whole file.
type Config struct {
	Store      Store             `toml:"store"`
	Registries Registries        `toml:"registries"`
	Aliases    map[string]string `toml:"aliases"`
	Network    Network           `toml:"network"`
	Run        Run               `toml:"run"`
	Provision  Provision         `toml:"provision"`
	Limits     Limits            `toml:"limits"`
}

// Provision configures first-start provisioning of dev boxes
// (provision.Config: the [provision] table).
type Provision = provision.Config

// Limits bound what a pull accepts from a registry (docs/config.md,
// package image/limits). A missing key keeps its default.
type Limits struct {
	DocumentSize     Size  `toml:"max_document_size"`
	IndexDepth       int   `toml:"max_index_depth"`
	Layers           int   `toml:"max_layers"`
	LayerSize        Size  `toml:"max_layer_size"`
	ImageSize        Size  `toml:"max_image_size"`
	CompressionRatio int64 `toml:"max_compression_ratio"`
}

// Size is a byte count in config.toml: an integer, or a string with a unit
// ("4MiB", "16 GiB").
type Size int64

// UnmarshalTOML reads an integer or a string with a unit.
func (s *Size) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x <= 0 {
			return sizeError{fmt.Sprintf("size %d is not positive", x)}
		}
		*s = Size(x)
	case string:
		n, err := limits.ParseSize(x)
		if err != nil {
			return sizeError{err.Error()}
		}
		*s = Size(n)
	default:
		return sizeError{fmt.Sprintf("a size is an integer or a string such as \"4MiB\", not %T", v)}
	}
	return nil
}

// sizeError is a bad Size, reported with its key.
type sizeError struct{ msg string }

func (e sizeError) Error() string { return e.msg }

// Resolve returns the limits of a pull: the file's values over the
// defaults, with path (the configuration file) for the hints.
func (l Limits) Resolve(path string) limits.Limits {
	return limits.Limits{
		DocumentSize:     int64(l.DocumentSize),
		IndexDepth:       l.IndexDepth,
		Layers:           l.Layers,
		LayerSize:        int64(l.LayerSize),
		ImageSize:        int64(l.ImageSize),
		CompressionRatio: l.CompressionRatio,
		ConfigPath:       path,
	}.Resolve()
}

// Run configures devbox run.
type Run struct {
	// Scratch is where an ephemeral box keeps its writable layer:
	// "memory" (the default: a tmpfs private to the box) or "disk".
	Scratch string `toml:"scratch"`
}

// ScratchInMemory reports whether ephemeral boxes keep their writable layer
// in memory.
func (r Run) ScratchInMemory() bool { return r.Scratch != "disk" }

// Network configures user-mode networking (docs/network.md). It has
// network.Config's fields, which the box lifecycle takes
// (cmdutil.OpenBoxes converts it; the conversion stops compiling when the
// two differ): defined here so that the front, which reads the
// configuration, does not link package network.
type Network struct {
	// Mode is the default --net of devbox run and of new boxes.
	Mode string `toml:"mode"`
	// DNS are the upstream resolvers of the user-mode DNS ("ip" or
	// "ip:port"); empty: the host's /etc/resolv.conf.
	DNS []string `toml:"dns"`
	// HostLoopback maps the gateway (host.devbox.internal) to the host's
	// 127.0.0.1 (default true).
	HostLoopback *bool `toml:"host_loopback"`
	// IPv6 gives boxes IPv6 where the driver has it (default true).
	IPv6 *bool `toml:"ipv6"`
	// AutoPorts forwards the ports a box listens on (default true).
	AutoPorts *bool `toml:"auto_ports"`
}

// Store configures where images and boxes live.
type Store struct {
	Root string `toml:"root"`
}

// Registries configures mirrors and plain-HTTP registries.
type Registries struct {
	Mirrors  map[string][]string `toml:"mirrors"`
	Insecure []string            `toml:"insecure"`
}

// Path returns the configuration file's path (internal/configpath).
func Path() string { return configpath.Path() }

// Load reads the file at path.
func Load(path string) (*Config, error) {
	c := &Config{}
	md, err := toml.DecodeFile(path, c)
	return checked(path, c, md, err)
}

// Decode reads data, the content of the file at path, as Load reads the
// file (the CLI's caller record for devbox's front keeps the content its
// settings came from: runtime/session).
func Decode(path string, data []byte) (*Config, error) {
	c := &Config{}
	md, err := toml.Decode(string(data), c)
	return checked(path, c, md, err)
}

// checked is c, decoded from the file at path with md and err, once its
// values are checked.
func checked(path string, c *Config, md toml.MetaData, err error) (*Config, error) {
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return c, nil
		}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if strings.HasPrefix(pe.LastKey, "limits.") {
				return nil, fmt.Errorf("reading %s: line %d: %s: %s (hint: docs/config.md lists the limits)", path, pe.Position.Line, pe.LastKey, pe.Message)
			}
			return nil, fmt.Errorf("reading %s: line %d: %s (hint: fix the TOML syntax; docs/config.md shows an example)", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("reading %s: %w (hint: docs/config.md shows the format)", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("reading %s: unknown setting %q (hint: docs/config.md lists the settings)", path, und[0].String())
	}
	if c.Store.Root != "" && !filepath.IsAbs(c.Store.Root) {
		return nil, fmt.Errorf("reading %s: [store] root %q is not an absolute path (hint: write the full path, e.g. root = %q)", path, c.Store.Root, filepath.Join(configpath.DataHome(), "devbox"))
	}
	for key, v := range map[string]int64{limits.KeyIndexDepth: int64(c.Limits.IndexDepth), limits.KeyLayers: int64(c.Limits.Layers), limits.KeyCompressionRatio: c.Limits.CompressionRatio} {
		if v < 0 {
			return nil, fmt.Errorf("reading %s: [limits] %s is %d (hint: use a positive number, or remove the key for the default)", path, key, v)
		}
	}
	switch c.Run.Scratch {
	case "", "memory", "disk":
	default:
		return nil, fmt.Errorf("reading %s: run.scratch is %q (hint: use \"memory\" or \"disk\")", path, c.Run.Scratch)
	}
	for k, v := range c.Provision.Repos {
		if !slices.Contains(provision.RepoKeys, k) {
			return nil, fmt.Errorf("reading %s: provision.repos.%s: not a package manager family devbox can point elsewhere (hint: use one of %s)", path, k, strings.Join(provision.RepoKeys, ", "))
		}
		if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("reading %s: provision.repos.%s must be one line (hint: docs/config.md shows an example)", path, k)
		}
	}
	return c, nil
}

// StoreRoot returns the store directory: flag, then DEVBOX_STORE, then the
// config file, then $XDG_DATA_HOME/devbox (internal/configpath).
func (c *Config) StoreRoot(flag string) (string, error) {
	return configpath.StoreRoot(flag, c.Store.Root)
}
