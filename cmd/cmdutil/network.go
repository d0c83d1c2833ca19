package cmdutil

import (
	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/network"
	nethost "github.com/devbox-dev/devbox/network/host"
)

// NetworkFlags are the network flags of devbox run and devbox create.
type NetworkFlags struct {
	Net            string   // --net ("" = the configured or built-in default)
	Publish        []string // -p
	NoHostLoopback bool
	NoAutoPorts    bool
}

// NetworkChoice is a box's network, resolved on this host: the driver and
// what the helper is told.
type NetworkChoice struct {
	Driver       string // network.ModeNone, network.ModeHost or a network.Driver*
	Publish      []network.PortSpec
	HostLoopback bool
	AutoPorts    bool
	IPv6         bool
	DNS          []string
}

// UserMode reports whether the box needs the network helper.
func (c NetworkChoice) UserMode() bool { return network.IsUserMode(c.Driver) }

// HelperOptions are the helper's options for a box whose runtime
// directory is runDir.
func (c NetworkChoice) HelperOptions(runDir string) nethost.Options {
	return nethost.Options{Driver: c.Driver, RunDir: runDir, Publish: c.Publish, AutoPorts: c.AutoPorts,
		HostLoopback: c.HostLoopback, IPv6: c.IPv6, DNS: c.DNS}
}

// DefaultMode returns the --net a command uses when none is given: the
// configuration's, else builtin.
func DefaultMode(cfg *config.Config, builtin string) string {
	if cfg != nil && cfg.Network.Mode != "" {
		return cfg.Network.Mode
	}
	return builtin
}

// ValidateNetworkFlags checks the flags without looking at the host (for
// devbox create, whose box may start on another day).
func ValidateNetworkFlags(mode string, publish []string) error {
	if err := network.ValidateMode(mode); err != nil {
		return FlagErrorf("%v", err)
	}
	if _, err := network.ParsePorts(publish); err != nil {
		return FlagErrorf("%v", err)
	}
	if m := network.Canonical(mode); len(publish) > 0 && (m == network.ModeHost || m == network.ModeNone) {
		return FlagErrorf("--publish needs user-mode networking, not --net %s (hint: with --net host the box's ports are the host's already; use --net slirp)", m)
	}
	return nil
}

// ChooseNetwork resolves mode (already defaulted) and the flags against
// the configuration and what this host has.
func ChooseNetwork(cfg *config.Config, mode string, fl NetworkFlags) (NetworkChoice, error) {
	if err := ValidateNetworkFlags(mode, fl.Publish); err != nil {
		return NetworkChoice{}, err
	}
	ports, _ := network.ParsePorts(fl.Publish)
	var nc config.Network
	if cfg != nil {
		nc = cfg.Network
	}
	c := NetworkChoice{
		Publish:      ports,
		HostLoopback: !fl.NoHostLoopback && boolOr(nc.HostLoopback, true),
		AutoPorts:    !fl.NoAutoPorts && boolOr(nc.AutoPorts, true),
		IPv6:         boolOr(nc.IPv6, true),
		DNS:          nc.DNS,
	}
	driver, err := network.Select(mode, network.HostProbe(), network.Needs{CustomDNS: len(nc.DNS) > 0})
	if err != nil {
		return NetworkChoice{}, err
	}
	c.Driver = driver
	if c.UserMode() {
		if err := network.CheckTun(); err != nil {
			return NetworkChoice{}, err
		}
	}
	return c, nil
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
