package cmdutil

import (
	"os"
	"path/filepath"

	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/network"
	nethost "github.com/devbox-dev/devbox/network/host"
)

// NetworkFlags are the network flags of devbox run and devbox create.
type NetworkFlags struct {
	Net     string   // --net ("" = the configured or built-in default)
	Publish []string // -p
	// HostLoopback and NoHostLoopback are --host-loopback and
	// --no-host-loopback; with neither, Sandboxed decides.
	HostLoopback   bool
	NoHostLoopback bool
	// Sandboxed: the box is a sandbox (devbox run, a box with --home DIR),
	// whose default is no host loopback; a dev box (your own home) keeps
	// it unless [network] host_loopback = false.
	Sandboxed   bool
	NoAutoPorts bool
}

// HostLoopbackFlagsHelp are the help texts of --host-loopback and
// --no-host-loopback.
const (
	HostLoopbackHelp   = "let the box reach the host's 127.0.0.1 as host.devbox.internal (the gateway): every local user's loopback services (default for dev boxes)"
	NoHostLoopbackHelp = "do not let the box reach the host's 127.0.0.1 (default for devbox run and --home boxes)"
	// DevBoxLoopbackNote is the one line of create's and shell's help.
	DevBoxLoopbackNote = "A box in your own home reaches the host's 127.0.0.1 (host.devbox.internal): every\n" +
		"local user's loopback services are reachable from it; --no-host-loopback turns that off."
)

// HostLoopback decides whether a box reaches the host's loopback: the
// flags first, then the box's kind (a sandbox does not), then the
// configuration's [network] host_loopback for a dev box (default true).
func HostLoopback(fl NetworkFlags, configured *bool) bool {
	switch {
	case fl.NoHostLoopback:
		return false
	case fl.HostLoopback:
		return true
	case fl.Sandboxed:
		return false
	}
	return boolOr(configured, true)
}

// RecordNoHostLoopback is what a new box's record keeps (its
// noHostLoopback field): true when the box must not reach the host's
// loopback. A record without it (false) means what it always meant: the
// configured default, true unless [network] host_loopback = false.
func RecordNoHostLoopback(fl NetworkFlags) bool {
	return fl.NoHostLoopback || (fl.Sandboxed && !fl.HostLoopback)
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
	// Hostname is the box's name, which its DNS answers (the gvisor
	// driver's resolver); set by the caller once the spec has it.
	Hostname string
}

// UserMode reports whether the box needs the network helper.
func (c NetworkChoice) UserMode() bool { return network.IsUserMode(c.Driver) }

// HelperOptions are the helper's options for a box whose runtime
// directory is runDir.
func (c NetworkChoice) HelperOptions(runDir string) nethost.Options {
	return nethost.Options{Driver: c.Driver, RunDir: runDir, Publish: c.Publish, AutoPorts: c.AutoPorts,
		HostLoopback: c.HostLoopback, IPv6: c.IPv6, DNS: c.DNS, Hostname: c.Hostname}
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
	return ValidateNetwork(mode, NetworkFlags{Publish: publish})
}

// ValidateNetwork is ValidateNetworkFlags with every network flag.
func ValidateNetwork(mode string, fl NetworkFlags) error {
	if fl.HostLoopback && fl.NoHostLoopback {
		return FlagErrorf("--host-loopback and --no-host-loopback contradict each other (hint: give one of them)")
	}
	publish := fl.Publish
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
	if err := ValidateNetwork(mode, fl); err != nil {
		return NetworkChoice{}, err
	}
	ports, _ := network.ParsePorts(fl.Publish)
	var nc config.Network
	if cfg != nil {
		nc = cfg.Network
	}
	c := NetworkChoice{
		Publish:      ports,
		HostLoopback: HostLoopback(fl, nc.HostLoopback),
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

// IsOwnHome reports whether dir (absolute) is the caller's home ($HOME),
// the home a box gets by default: --home ~ makes a dev box, not a
// sandbox.
func IsOwnHome(dir string) bool {
	h := os.Getenv("HOME")
	return h != "" && filepath.IsAbs(h) && filepath.Clean(h) == filepath.Clean(dir)
}
