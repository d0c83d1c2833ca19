package box

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/devbox-dev/devbox/network"
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/network/host/status"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// DefaultNet is the network of devbox run and of a new box when neither
// --net nor [network] mode says.
const DefaultNet = network.ModeSlirp

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
	// Cgroup is the box's cgroup (its group path), which the helper joins
	// (nethost.Options.Cgroup); set by the caller once it exists.
	Cgroup string
}

// UserMode reports whether the box needs the network helper.
func (c NetworkChoice) UserMode() bool { return network.IsUserMode(c.Driver) }

// Early reports whether the box's init can set its network up without
// waiting for the helper (runtime.Spec.NetEarly): the gvisor driver, whose
// configuration is fixed, and no ports, whose box side needs the helper's.
func (c NetworkChoice) Early() bool {
	return c.Driver == network.DriverGvisor && len(c.Publish) == 0 && !c.AutoPorts
}

// HelperOptions are the helper's options for a box whose runtime
// directory is runDir.
func (c NetworkChoice) HelperOptions(runDir string) nethost.Options {
	return nethost.Options{Driver: c.Driver, RunDir: runDir, Publish: c.Publish, AutoPorts: c.AutoPorts,
		HostLoopback: c.HostLoopback, IPv6: c.IPv6, DNS: c.DNS, Hostname: c.Hostname, Cgroup: c.Cgroup}
}

// DefaultMode returns the --net a command uses when none is given: the
// configuration's, else builtin.
func DefaultMode(cfg network.Config, builtin string) string {
	if cfg.Mode != "" {
		return cfg.Mode
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
		return inputErrorf("--host-loopback and --no-host-loopback contradict each other (hint: give one of them)")
	}
	publish := fl.Publish
	if err := network.ValidateMode(mode); err != nil {
		return inputErrorf("%v", err)
	}
	if _, err := network.ParsePorts(publish); err != nil {
		return inputErrorf("%v", err)
	}
	if m := network.Canonical(mode); len(publish) > 0 && (m == network.ModeHost || m == network.ModeNone) {
		return inputErrorf("--publish needs user-mode networking, not --net %s (hint: with --net host the box's ports are the host's already; use --net slirp)", m)
	}
	return nil
}

// resolveNetwork resolves mode (already defaulted) and the flags against
// the configuration and what this host has.
func resolveNetwork(nc network.Config, mode string, fl NetworkFlags) (NetworkChoice, error) {
	if err := ValidateNetwork(mode, fl); err != nil {
		return NetworkChoice{}, err
	}
	ports, _ := network.ParsePorts(fl.Publish)
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

// Network is the network of one start of a box — a persistent box's start
// or a devbox run: the driver chosen on this host and, with user-mode
// networking, the helper (network/host), which lives while the box does,
// in the box's runtime directory.
type Network struct {
	Choice   NetworkChoice
	runDir   string
	h        *nethost.Helper
	finished bool
}

// chooseNetwork resolves mode ("": the configured default, else
// DefaultNet) and the network flags against the configuration and what
// this host has, now.
func chooseNetwork(cfg network.Config, mode string, fl NetworkFlags) (*Network, error) {
	if mode == "" {
		mode = DefaultMode(cfg, DefaultNet)
	}
	c, err := resolveNetwork(cfg, mode, fl)
	if err != nil {
		return nil, err
	}
	return &Network{Choice: c}, nil
}

// createNetwork checks the network flags of a new box and returns the mode
// its record keeps. "slirp" stays "slirp": the driver is picked at every
// start, from what the host has then.
func (m *Manager) createNetwork(o CreateOptions) (string, error) {
	cfg, err := m.settings()
	if err != nil {
		return "", err
	}
	mode := o.Net
	if mode == "" {
		mode = DefaultMode(cfg.Network, DefaultNet)
	}
	if err := ValidateNetwork(mode, NetworkFlags{Publish: o.Publish, HostLoopback: o.HostLoopback, NoHostLoopback: o.NoHostLoopback}); err != nil {
		return "", err
	}
	return network.Canonical(mode), nil
}

// boxNetwork resolves box r's network on this host, now.
func (m *Manager) boxNetwork(r *rbox.Record) (*Network, error) {
	cfg, err := m.settings()
	if err != nil {
		return nil, err
	}
	mode := r.Net
	if mode == "" {
		mode = network.ModeHost // records from before user-mode networking
	}
	n, err := chooseNetwork(cfg.Network, mode, NetworkFlags{Publish: r.Publish, NoHostLoopback: r.NoHostLoopback, NoAutoPorts: r.NoAutoPorts})
	if err != nil {
		return nil, fmt.Errorf("box %s: %w", r.Name, err)
	}
	// A sandbox's ports reach the host's loopback only when published
	// (-p): forwarded on their own, they would stand in for host services
	// the user's clients expect there (docs/security.md, "Host loopback").
	n.Choice.AutoPorts = n.Choice.AutoPorts && rbox.IsDevBox(r, HostAccount(m.ids).Home)
	return n, nil
}

// Apply sets spec's network: the driver and, with user-mode networking,
// the box's /etc/hosts and /etc/resolv.conf (from hostResolv, the host's)
// and the handshake descriptor, fd in the init.
func (n *Network) Apply(spec *runtime.Spec, hostResolv string, fd int) {
	spec.Net = n.Choice.Driver
	if !n.Choice.UserMode() {
		return
	}
	spec.Hosts = network.EtcHosts(spec.Hostname, n.Choice.HostLoopback)
	if n.Choice.Hostname == "" {
		n.Choice.Hostname = spec.Hostname
	}
	spec.ResolvConf = network.ResolvConf(hostResolv)
	spec.NetFD = fd
	spec.NetEarly = n.Choice.Early()
}

// Start prepares the helper of a box whose runtime directory is runDir
// and returns the init's end of their handshake (nil without user-mode
// networking); the process starts in Started.
func (n *Network) Start(runDir string) (*os.File, error) {
	if !n.Choice.UserMode() {
		return nil, nil
	}
	n.runDir = runDir
	h, err := nethost.Prepare(rootless.HostStage(NetExe(), nethost.Stage), n.Choice.HelperOptions(runDir))
	if err != nil {
		return nil, err
	}
	n.h = h
	return h.InitEnd, nil
}

// Started starts the helper process, now that the box init is starting
// (it only needed its end of the handshake), and drops devbox's copy of
// that end.
func (n *Network) Started() {
	if n != nil && n.h != nil {
		n.h.InitStarted()
	}
}

// HasHelper reports whether the box has a network helper.
func (n *Network) HasHelper() bool { return n != nil && n.h != nil }

// RunDir is the helper's runtime directory ("" without one).
func (n *Network) RunDir() string { return n.runDir }

// Failed returns why the helper failed a box's start, if it did.
func (n *Network) Failed() error {
	if n == nil || n.h == nil {
		return nil
	}
	n.h.CloseInitEnd()
	return n.h.Err(2 * time.Second)
}

// Watch has warn told, once and while the box runs, when its network
// stops working: its helper died, or failed to start for a box that did
// not wait for it (an early start, NetworkChoice.Early), which would
// otherwise run on without a word (network/host.Helper.Watch). Finish
// ends the watch.
func (n *Network) Watch(warn func(msg string)) {
	if n == nil || n.h == nil {
		return
	}
	log := n.h.LogPath()
	n.h.Watch(n.Choice.Early(), func(err error) { warn(status.Warning(err, log, status.RunRemedy)) })
}

// StartWarning is what to tell the user when the network of a box that
// did not wait for its helper (an early start) failed to come up, once
// the box runs ("" when it came up, or the box waited for its helper and
// its start failed instead, or no word came), with remedy in the hint:
// the helper's word has come by the time the box's agent answers, but
// from a helper slower than that it waits at most timeout.
func (n *Network) StartWarning(timeout time.Duration, remedy string) string {
	if n == nil || n.h == nil || !n.Choice.Early() {
		return ""
	}
	if err := n.h.StartFailure(timeout); err != nil {
		return status.Warning(err, n.h.LogPath(), remedy)
	}
	return ""
}

// Warned reports whether Watch's warn was told that the network is down.
func (n *Network) Warned() bool { return n != nil && n.h != nil && n.h.Warned() }

// Finish, for a box that ended with exit code code, waits for the helper
// to clean up after it and returns why the network failed when the box
// ended with devbox's failure code (failed) and the watch did not say it
// already; then removes the runtime directory (a devbox run's: its own),
// except after a failure of the helper: its net.log stays, for the user
// to read (in $XDG_RUNTIME_DIR, emptied at logout or reboot).
func (n *Network) Finish(failed bool) error {
	if n.h == nil {
		return nil
	}
	n.h.CloseInitEnd()
	warned := n.h.Mute()
	var err error
	if failed && warned == nil {
		err = n.h.Err(2 * time.Second)
	}
	// With ports published on the host, wait until the helper has closed
	// them, so that the next command can bind them. Otherwise nothing of
	// the box's network outlives the helper's own exit, which needs no
	// waiting for: it has a session of its own and finishes alone.
	if len(n.Choice.Publish) > 0 || err != nil {
		n.h.Wait(5 * time.Second)
	}
	if err == nil && warned == nil {
		_ = os.RemoveAll(n.runDir)
	}
	n.finished = true
	return err
}

// Abandon cleans up after a devbox run that failed before Finish: the
// helper ends when the box's end of the handshake is gone.
func (n *Network) Abandon() {
	if n.h == nil || n.finished {
		return
	}
	n.h.CloseInitEnd()
	_ = os.RemoveAll(n.runDir)
}

// networkState is the network part of devbox inspect: nil when the box
// does not run with user-mode networking.
func (m *Manager) networkState(r *rbox.Record) *nethost.State {
	s, err := nethost.ReadState(m.bs.RunDir(r.ID))
	if err != nil {
		return nil
	}
	return s
}

// Ports returns the ports of running box name that are reachable on the
// host (its network helper's state).
func (m *Manager) Ports(name string) (*nethost.State, error) {
	r, err := m.bs.Get(name)
	if err != nil {
		return nil, err
	}
	s, err := nethost.ReadState(m.bs.RunDir(r.ID))
	if errors.Is(err, fs.ErrNotExist) {
		if !m.bs.Running(r.ID) {
			return nil, fmt.Errorf("box %s is not running (hint: devbox shell %s starts it)", r.Name, r.Name)
		}
		return nil, fmt.Errorf("box %s has no user-mode network (its --net is %s), so no ports of its own (hint: devbox create --net slirp)", r.Name, orHost(r.Net))
	}
	return s, err
}

func orHost(net string) string {
	if net == "" {
		return network.ModeHost
	}
	return net
}
