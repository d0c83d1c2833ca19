package slirp4netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api"
	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	rknet "github.com/rootless-containers/rootlesskit/v3/pkg/network"
	rkslirp "github.com/rootless-containers/rootlesskit/v3/pkg/network/slirp4netns"

	"github.com/devbox-dev/devbox/network"
)

// Options configure the parent driver.
type Options struct {
	Binary       string // default "slirp4netns"
	MTU          int    // 0: network.MTU
	HostLoopback bool   // the gateway reaches the host's 127.0.0.1
	IPv6         bool
	Log          io.Writer
}

// Parent starts slirp4netns against the box init.
type Parent struct {
	o       Options
	seccomp bool
	cmd     *exec.Cmd
	exitW   *os.File
	done    chan struct{}
}

var _ rknet.ParentDriver = (*Parent)(nil)

// NewParentDriver checks the installed slirp4netns (v0.4.0 or later).
func NewParentDriver(o Options) (*Parent, error) {
	if o.Binary == "" {
		o.Binary = "slirp4netns"
	}
	if o.MTU <= 0 {
		o.MTU = network.MTU
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	f, err := rkslirp.DetectFeatures(o.Binary)
	if err != nil {
		return nil, err
	}
	if !f.SupportsCIDR || !f.SupportsDisableHostLoopback {
		return nil, errors.New("slirp4netns is older than v0.3.0")
	}
	if o.IPv6 && !f.SupportsEnableIPv6 {
		o.IPv6 = false
	}
	return &Parent{o: o, seccomp: f.SupportsEnableSeccomp && f.KernelSupportsEnableSeccomp}, nil
}

// NewChildDriver returns the box side: the tap exists, the init
// configures it.
func NewChildDriver() rknet.ChildDriver { return rkslirp.NewChildDriver() }

// Info implements rknet.ParentDriver.
func (d *Parent) Info(context.Context) (*api.NetworkDriverInfo, error) {
	return &api.NetworkDriverInfo{Driver: network.DriverSlirp4netns, ChildIP: net.ParseIP(network.BoxIP),
		DNS: []net.IP{net.ParseIP(network.DNS)}, IPv6: d.o.IPv6}, nil
}

// MTU implements rknet.ParentDriver.
func (d *Parent) MTU() int { return d.o.MTU }

// ConfigureNetwork implements rknet.ParentDriver: it starts slirp4netns in
// the network namespace of childPID and waits until the tap is up.
func (d *Parent) ConfigureNetwork(childPID int, stateDir, detachedNetNSPath string) (*messages.ParentInitNetworkDriverCompleted, func() error, error) {
	if d.cmd != nil {
		return nil, nil, errors.New("slirp4netns: already configured")
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer readyR.Close()
	defer readyW.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer exitR.Close()
	args := []string{"--mtu", strconv.Itoa(d.o.MTU), "--ready-fd", "3", "--exit-fd", "4", "--cidr", network.Subnet}
	if !d.o.HostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	if d.o.IPv6 {
		args = append(args, "--enable-ipv6")
	}
	if d.seccomp {
		args = append(args, "--enable-seccomp")
	}
	if detachedNetNSPath != "" {
		args = append(args, "--userns-path=/proc/"+strconv.Itoa(childPID)+"/ns/user", "--netns-type=path", detachedNetNSPath)
	} else {
		args = append(args, strconv.Itoa(childPID))
	}
	args = append(args, network.Device)
	cmd := exec.Command(d.o.Binary, args...)
	cmd.Stdout, cmd.Stderr = d.o.Log, d.o.Log
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Pdeathsig follows the thread that forks.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		exitW.Close()
		return nil, nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	d.cmd, d.exitW, d.done = cmd, exitW, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	readyW.Close()
	if err := waitReady(readyR, d.done); err != nil {
		_ = d.cleanup()
		return nil, nil, fmt.Errorf("slirp4netns: %w", err)
	}
	msg := &messages.ParentInitNetworkDriverCompleted{
		Dev: network.Device, IP: network.BoxIP, Netmask: network.Prefix, Gateway: network.Gateway,
		DNS: []string{network.DNS}, MTU: d.o.MTU,
	}
	return msg, d.cleanup, nil
}

// PID is slirp4netns's process id once ConfigureNetwork started it (0
// before): the helper attaches its tap filter to its end of the box's tap.
func (d *Parent) PID() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// waitReady waits for slirp4netns's byte on the ready pipe.
func waitReady(r *os.File, exited <-chan struct{}) error {
	got := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := r.Read(b)
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			return errors.New("exited before the network was up (see net.log)")
		}
		return nil
	case <-exited:
		return errors.New("exited before the network was up (see net.log)")
	case <-time.After(30 * time.Second):
		return errors.New("the network was not up after 30 s")
	}
}

// cleanup ends slirp4netns: closing the exit fd asks it to, a kill makes
// sure.
func (d *Parent) cleanup() error {
	if d.cmd == nil {
		return nil
	}
	d.exitW.Close()
	select {
	case <-d.done:
	case <-time.After(2 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	return nil
}
