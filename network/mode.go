package network

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Network modes, as --net and the box record spell them.
const (
	// ModeSlirp is user-mode networking with the best driver present
	// (AutoOrder).
	ModeSlirp = "slirp"
	// ModeNone is a private network namespace with only lo.
	ModeNone = "none"
	// ModeHost shares the host's network namespace.
	ModeHost = "host"
)

// User-mode drivers. A box spec (runtime.Spec.Net) names one of these, or
// ModeNone or ModeHost, never ModeSlirp: the choice is made on the host
// before the box starts.
const (
	// DriverGvisor is devbox's in-process stack: gVisor's netstack with
	// devbox's forwarders and DNS relay (network/gvisor), in the network
	// helper. It
	// needs no program on the host, so it always works.
	DriverGvisor = "gvisor"
	// DriverPasta runs passt's pasta (rootlesskit's pasta driver).
	DriverPasta = "pasta"
	// DriverSlirp4netns runs slirp4netns (rootlesskit's slirp4netns driver,
	// which also needs nsenter and ip on the host).
	DriverSlirp4netns = "slirp4netns"
)

// Modes lists the values --net accepts, the usual ones first.
var Modes = []string{ModeSlirp, ModeNone, ModeHost, DriverGvisor, DriverPasta, DriverSlirp4netns}

// AutoOrder is the order in which ModeSlirp tries the drivers: the fastest
// measured on our reference machine first (docs/network.md has the table).
// DriverGvisor needs nothing installed, so it is always there.
var AutoOrder = []string{DriverGvisor, DriverPasta, DriverSlirp4netns}

// IsUserMode reports whether driver is a user-mode driver, which needs the
// network helper and the handshake with the init.
func IsUserMode(driver string) bool {
	switch driver {
	case DriverGvisor, DriverPasta, DriverSlirp4netns:
		return true
	}
	return false
}

// Canonical returns the canonical spelling of a --net value ("" when it is
// not one).
func Canonical(mode string) string {
	switch m := strings.ToLower(strings.TrimSpace(mode)); m {
	case ModeSlirp, ModeNone, ModeHost, DriverGvisor, DriverPasta, DriverSlirp4netns:
		return m
	case "gvisor-tap-vsock", "gvisortapvsock":
		return DriverGvisor
	case "private":
		return ModeNone
	}
	return ""
}

// ValidateMode checks a --net value.
func ValidateMode(mode string) error {
	if Canonical(mode) == "" {
		return fmt.Errorf("invalid --net %q (hint: use slirp (user-mode networking), none or host; or name a driver: gvisor, pasta, slirp4netns)", mode)
	}
	return nil
}

// Host is what Select needs to know about the machine; HostProbe is the
// real one, tests fake it.
type Host struct {
	// LookPath finds a program the way exec.LookPath does.
	LookPath func(name string) (string, error)
}

// HostProbe looks at this machine.
func HostProbe() Host { return Host{LookPath: exec.LookPath} }

// Needs are features a box asks for that not every driver has.
type Needs struct {
	// CustomDNS: [network] dns names upstream resolvers, which only the
	// gvisor driver's DNS forwarder can use (pasta and slirp4netns always
	// forward to the host's /etc/resolv.conf).
	CustomDNS bool
}

// ErrDriverMissing says a driver asked for by name is not installed.
var ErrDriverMissing = errors.New("network driver not installed")

// Select resolves a --net value to what a box spec carries: ModeNone,
// ModeHost or a driver. ModeSlirp takes the first driver of AutoOrder that
// is present and has what needs asks for.
func Select(mode string, h Host, needs Needs) (string, error) {
	m := Canonical(mode)
	switch m {
	case "":
		return "", ValidateMode(mode)
	case ModeNone, ModeHost:
		return m, nil
	case ModeSlirp:
		for _, d := range AutoOrder {
			if needs.CustomDNS && d != DriverGvisor {
				continue
			}
			if missing(d, h) == "" {
				return d, nil
			}
		}
		return DriverGvisor, nil
	}
	if needs.CustomDNS && m != DriverGvisor {
		return "", fmt.Errorf("--net %s cannot use the DNS servers of [network] dns: %s always forwards to the host's /etc/resolv.conf (hint: use --net gvisor or --net slirp, or remove [network] dns from the configuration)", m, m)
	}
	if what := missing(m, h); what != "" {
		return "", fmt.Errorf("--net %s: %w: %s (hint: %s; or use --net slirp, which picks a driver that is present)", m, ErrDriverMissing, what, installHint(m))
	}
	return m, nil
}

// missing names the program driver needs and the host lacks ("" when
// nothing is missing).
func missing(driver string, h Host) string {
	var need []string
	switch driver {
	case DriverPasta:
		need = []string{"pasta"}
	case DriverSlirp4netns:
		// rootlesskit creates the tap with nsenter + ip before slirp4netns
		// attaches to it.
		need = []string{"slirp4netns", "nsenter", "ip"}
	}
	for _, p := range need {
		if _, err := h.LookPath(p); err != nil {
			return p + " is not installed"
		}
	}
	return ""
}

func installHint(driver string) string {
	switch driver {
	case DriverPasta:
		return "install passt: sudo apt install passt, or sudo dnf install passt"
	case DriverSlirp4netns:
		return "install slirp4netns, util-linux and iproute2: sudo apt install slirp4netns util-linux iproute2"
	}
	return "run devbox doctor"
}

// TunPath is the device every user-mode driver creates its tap with.
const TunPath = "/dev/net/tun"

// CheckTun reports whether the tun device can be opened, with a hint when
// it cannot.
func CheckTun() error {
	f, err := os.OpenFile(TunPath, os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return nil
	}
	hint := "load the tun module: sudo modprobe tun"
	if errors.Is(err, os.ErrPermission) {
		hint = "make it usable for everyone, as distributions do: sudo chmod 0666 " + TunPath
	}
	return fmt.Errorf("user-mode networking needs %s: %w (hint: %s; or use --net host or --net none)", TunPath, err, hint)
}
