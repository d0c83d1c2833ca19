package host

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/devbox-dev/devbox/network"
)

// Stage is the devbox stage of the network helper; cmd/cli routes it
// to Main.
const Stage = "net"

// Options are what the CLI tells the helper (JSON on its stdin).
type Options struct {
	Driver string `json:"driver"` // a network.Driver* name
	// RunDir is the box's runtime directory ($XDG_RUNTIME_DIR/devbox/ID):
	// the helper keeps its state in RunDir/net and writes RunDir/ports.json.
	RunDir       string             `json:"runDir"`
	Publish      []network.PortSpec `json:"publish,omitempty"`
	AutoPorts    bool               `json:"autoPorts"`
	HostLoopback bool               `json:"hostLoopback"`
	IPv6         bool               `json:"ipv6"`
	DNS          []string           `json:"dns,omitempty"`
	// Hostname is the box's name: the gvisor driver's resolver answers it
	// with the box's address (and host.devbox.internal with the gateway
	// when HostLoopback), for images that resolve by DNS only.
	Hostname string `json:"hostname,omitempty"`
	MTU      int    `json:"mtu,omitempty"`
	// PollMillis is the auto-forward poll interval (default 500).
	PollMillis int `json:"pollMillis,omitempty"`
	// Cgroup is the box's cgroup v2 group path (as in /proc/PID/cgroup),
	// which the helper joins: given by the CLI that made it, not read from
	// the init, which a box may have moved by the time the helper of an
	// early start looks.
	Cgroup string `json:"cgroup,omitempty"`
}

// StateDir is where the drivers keep their sockets.
func (o Options) StateDir() string { return filepath.Join(o.RunDir, "net") }

// PortsFile is the path of the forwarded-ports file in runDir.
func PortsFile(runDir string) string { return filepath.Join(runDir, "ports.json") }

// LogFile is where the helper writes what its drivers say.
func LogFile(runDir string) string { return filepath.Join(runDir, "net.log") }

// State is the content of ports.json.
type State struct {
	Driver string         `json:"driver"`
	BoxIP  string         `json:"boxIP"`
	PID    int            `json:"helperPid"`
	Ports  []network.Port `json:"ports"`
}

// ReadState reads the forwarded ports of the box whose runtime directory
// is runDir. A box that is not running (or has no user-mode network) has
// no file: os.ErrNotExist.
func ReadState(runDir string) (*State, error) {
	b, err := os.ReadFile(PortsFile(runDir))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", PortsFile(runDir), err)
	}
	return &s, nil
}

// WriteState writes ports.json atomically (the helper keeps it current).
func WriteState(runDir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	p := PortsFile(runDir)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
