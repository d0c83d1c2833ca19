package pasta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api"
	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	rknet "github.com/rootless-containers/rootlesskit/v3/pkg/network"
	rkpasta "github.com/rootless-containers/rootlesskit/v3/pkg/network/pasta"

	"github.com/devbox-dev/devbox/network"
)

// Options configure the parent driver.
type Options struct {
	Binary       string // default "pasta"
	MTU          int    // 0: network.MTU
	HostLoopback bool   // the gateway reaches the host's loopback
	IPv6         bool
	Log          io.Writer
}

// The box's IPv6 addresses (pasta's --config-net sets them).
const (
	BoxIP6   = "fd00::100"
	Gateway6 = "fd00::2"
	DNS6     = "fd00::3"
)

// Parent runs pasta against the box init.
type Parent struct {
	o    Options
	cmd  *exec.Cmd
	done chan struct{}
}

var _ rknet.ParentDriver = (*Parent)(nil)

// NewParentDriver returns the host side.
func NewParentDriver(o Options) (*Parent, error) {
	if o.Binary == "" {
		o.Binary = "pasta"
	}
	if o.MTU <= 0 {
		o.MTU = network.MTU
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if _, err := exec.LookPath(o.Binary); err != nil {
		return nil, fmt.Errorf("pasta is not installed: %w", err)
	}
	return &Parent{o: o}, nil
}

// NewChildDriver returns the box side, which has nothing to do.
func NewChildDriver() rknet.ChildDriver { return rkpasta.NewChildDriver() }

// Info implements rknet.ParentDriver.
func (d *Parent) Info(context.Context) (*api.NetworkDriverInfo, error) {
	return &api.NetworkDriverInfo{Driver: network.DriverPasta, ChildIP: net.ParseIP(network.BoxIP),
		DNS: []net.IP{net.ParseIP(network.DNS)}, IPv6: d.o.IPv6}, nil
}

// MTU implements rknet.ParentDriver.
func (d *Parent) MTU() int { return d.o.MTU }

// Args are pasta's arguments for a box whose init is childPID, given its
// network namespace by netnsPath ("" for by pid).
func (d *Parent) Args(childPID int, netnsPath, pidFile string) []string {
	args := []string{
		"--foreground", "--quiet", "--pid", pidFile,
		"--config-net", "--ns-ifname", network.Device, "--mtu", strconv.Itoa(d.o.MTU),
		"--address", network.BoxIP, "--netmask", strconv.Itoa(network.Prefix),
		"--gateway", network.Gateway, "--dns-forward", network.DNS,
		// Nothing from the host into the box, and nothing of the host's
		// loopback bound in the box: ports are devbox's business.
		"--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "none", "--udp-ns", "none",
	}
	if !d.o.HostLoopback {
		args = append(args, "--no-map-gw")
	}
	if d.o.IPv6 {
		args = append(args, "--address", BoxIP6, "--gateway", Gateway6, "--dns-forward", DNS6)
	} else {
		args = append(args, "--ipv4-only")
	}
	user := "/proc/" + strconv.Itoa(childPID) + "/ns/user"
	if netnsPath != "" {
		args = append(args, "--userns", user, "--netns", netnsPath)
	} else {
		args = append(args, strconv.Itoa(childPID))
	}
	return args
}

// ConfigureNetwork implements rknet.ParentDriver: it starts pasta and
// waits until pasta configured the box's interface (it writes its pid
// file then).
func (d *Parent) ConfigureNetwork(childPID int, stateDir, detachedNetNSPath string) (*messages.ParentInitNetworkDriverCompleted, func() error, error) {
	if d.cmd != nil {
		return nil, nil, errors.New("pasta: already configured")
	}
	pidFile := filepath.Join(stateDir, "pasta.pid")
	_ = os.Remove(pidFile)
	var out strings.Builder
	cmd := exec.Command(d.o.Binary, d.Args(childPID, detachedNetNSPath, pidFile)...)
	cmd.Stdout = io.MultiWriter(d.o.Log, &limited{b: &out, n: 4096})
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, nil, fmt.Errorf("starting pasta: %w", err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			break
		}
		select {
		case <-d.done:
			return nil, nil, fmt.Errorf("pasta exited: %s", strings.TrimSpace(syslogless(out.String())))
		case <-deadline:
			_ = d.cleanup()
			return nil, nil, errors.New("pasta did not configure the network in 30 s")
		case <-time.After(2 * time.Millisecond):
		}
	}
	dns := []string{network.DNS}
	if d.o.IPv6 {
		dns = append(dns, DNS6)
	}
	msg := &messages.ParentInitNetworkDriverCompleted{
		Dev: network.Device, IP: network.BoxIP, Netmask: network.Prefix, Gateway: network.Gateway,
		DNS: dns, MTU: d.o.MTU,
	}
	return msg, d.cleanup, nil
}

// PID is pasta's process id once ConfigureNetwork started it (0 before):
// the helper attaches its tap filter to pasta's end of the box's tap.
func (d *Parent) PID() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// cleanup stops pasta.
func (d *Parent) cleanup() error {
	if d.cmd == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(2 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	return nil
}

// syslogless drops the "Failed to send … to syslog" lines old pastas
// print where there is no syslog.
func syslogless(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "to syslog") && strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "; ")
}

// limited keeps the first n bytes written.
type limited struct {
	b *strings.Builder
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if rest := l.n - l.b.Len(); rest > 0 {
		l.b.Write(p[:min(len(p), rest)])
	}
	return len(p), nil
}
