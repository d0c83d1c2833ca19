package child

import (
	"errors"
	"fmt"
	"os"

	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	rknet "github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"golang.org/x/sys/unix"

	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/network/tapfilter"
)

// gvisorChild is the box side of the gvisor driver (network/gvisor holds the
// host side): it creates the tap in the box's network namespace.
// Its file descriptor goes to the host (TakeTap); the box keeps no copy,
// so the interface disappears with the helper's stack.
type gvisorChild struct {
	tap *os.File
}

func newGvisorChild() *gvisorChild { return &gvisorChild{} }

var _ rknet.ChildDriver = (*gvisorChild)(nil)

// ChildDriverInfo implements rknet.ChildDriver: the init configures the
// interface (address, route, MTU).
func (c *gvisorChild) ChildDriverInfo() (*rknet.ChildDriverInfo, error) {
	return &rknet.ChildDriverInfo{ConfiguresInterface: false}, nil
}

// ConfigureNetworkChild implements rknet.ChildDriver: it creates the tap
// named in msg.
func (c *gvisorChild) ConfigureNetworkChild(msg *messages.ParentInitNetworkDriverCompleted, detachedNetNSPath string) (string, error) {
	if detachedNetNSPath != "" {
		return "", errors.New("gvisor driver: a detached network namespace is not supported")
	}
	if msg.Dev == "" {
		return "", errors.New("gvisor driver: no device name")
	}
	f, err := OpenTap(msg.Dev)
	if err != nil {
		return "", err
	}
	// Before the box can send anything: the helper may start reading the
	// tap only after the box's command has run (network.Message.Early),
	// and the frames queued until then must have passed the filter too.
	if err := tapfilter.Attach(f.Fd()); err != nil {
		f.Close()
		return "", err
	}
	c.tap = f
	return msg.Dev, nil
}

// TakeTap returns the tap (once); the caller sends it to the host and
// closes it.
func (c *gvisorChild) TakeTap() *os.File {
	f := c.tap
	c.tap = nil
	return f
}

// OpenTap creates tap device name in the current network namespace and
// returns its file (frames without packet information). The device is
// persistent: it is removed with the namespace, not when the file closes.
func OpenTap(name string) (*os.File, error) {
	fd, err := unix.Open(network.TunPath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w (hint: sudo modprobe tun, and make it usable: sudo chmod 0666 %s; or use --net host or --net none)", network.TunPath, err, network.TunPath)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("creating tap %s: %w", name, err)
	}
	// Persistent: closing the last descriptor (the helper's, once the box
	// is gone) then leaves the device to the end of its network namespace,
	// which the kernel removes with lo in one batch, in the background.
	// Otherwise that close unregisters it at once: ~25 ms here, most of it
	// waiting for RCU grace periods, and holding the lock every other
	// box's network set-up takes meanwhile. The device goes with the
	// namespace either way; without persistence it only costs more.
	_ = unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1)
	return os.NewFile(uintptr(fd), name), nil
}
