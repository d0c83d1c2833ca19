package child

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	rknet "github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"golang.org/x/sys/unix"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/network/pasta"
	"github.com/devbox-dev/devbox/network/slirp4netns"
)

// ErrAborted says the start failed and the user has been told why by the
// CLI: the helper gave up (a published port was taken, a driver failed),
// or the box side failed and the helper passed that on. The init exits
// quietly. errors.Is(err, ErrAborted) holds for both.
var ErrAborted = errors.New("the network helper aborted the start")

// reported is a failure of the box side that the helper passes on.
type reported struct{ err error }

func (r *reported) Error() string   { return r.err.Error() }
func (r *reported) Unwrap() []error { return []error{r.err, ErrAborted} }

// Session is the init's end of the handshake. The init keeps it open until
// it exits: the helper tears the network down when it closes.
type Session struct {
	c *network.Conn
	// early: Begin set the network up and handed the tap over; Configure
	// has nothing to wait for.
	early bool
}

// keep holds the session for the init's life, so that the garbage
// collector never closes the socket.
var keep *Session

// Begin sends Hello on f, the init's end of the handshake socketpair
// (runtime.Spec.NetFD). The helper starts the driver meanwhile.
//
// With early (the gvisor driver without ports, runtime.Spec.NetEarly) the
// box needs nothing from the helper: Begin brings the box's network up
// itself — lo, the sysctls, the tap with devbox's tap filter attached, its
// address, route and MTU (network.GvisorConfig) — and sends Ready with the
// tap right after Hello, without waiting for the helper, which may not
// have started yet. The helper's stack reads the tap once it has; what the
// box sends before waits in the tap's queue (a first DNS query is answered
// then). A failure is the init's to report.
func Begin(f *os.File, early bool) (*Session, error) {
	c, err := network.FileConn(f)
	if err != nil {
		return nil, err
	}
	if err := c.Send(network.Message{Type: network.MsgHello, Version: network.WireVersion, Early: early}); err != nil {
		c.Close()
		return nil, err
	}
	keep = &Session{c: c, early: early}
	if early {
		cfg := network.GvisorConfig(network.MTU)
		if err := keep.setUp(network.Message{Driver: network.DriverGvisor, Net: &cfg}); err != nil {
			return nil, err
		}
		trace.Mark("init: network set up")
	}
	return keep, nil
}

// handshakeTimeout bounds how long the init waits for the helper at each
// step; a helper that dies closes the socket, so this only catches a hung
// one.
const handshakeTimeout = 60 * time.Second

// Configure waits for the helper's driver message, brings up the box's
// network and waits for the helper to publish the ports. It returns
// ErrAborted when the helper gave up. After an early Begin it does
// nothing.
func (s *Session) Configure() error {
	if s.early {
		return nil
	}
	_ = s.c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer s.c.SetDeadline(time.Time{})
	m, err := s.recv(network.MsgConfigure)
	if err != nil {
		return err
	}
	if err := s.setUp(m); err != nil {
		return s.abort(err)
	}
	_, err = s.recv(network.MsgGo)
	return err
}

// setUp brings up the box's network as m (Configure's message) says and
// sends Ready. An error comes before Ready was sent, except a failure to
// send it.
func (s *Session) setUp(m network.Message) error {
	if err := LoopbackUp(); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	boxSysctls()
	cd, err := childDriver(m.Driver)
	if err != nil {
		return err
	}
	if m.Net == nil {
		return errors.New("network handshake: no driver configuration")
	}
	rk := &messages.ParentInitNetworkDriverCompleted{
		Dev: m.Net.Dev, IP: m.Net.IP, Netmask: m.Net.Netmask, Gateway: m.Net.Gateway,
		DNS: m.Net.DNS, MTU: m.Net.MTU, NetworkDriverOpaque: m.Net.Opaque,
	}
	dev, err := cd.ConfigureNetworkChild(rk, "")
	if err != nil {
		return fmt.Errorf("%s: %w", m.Driver, err)
	}
	var files []*os.File
	var names []string
	if g, ok := cd.(*gvisorChild); ok {
		if tap := g.TakeTap(); tap != nil {
			defer tap.Close()
			files, names = append(files, tap), append(names, network.FileTap)
		}
	}
	if info, err := cd.ChildDriverInfo(); err == nil && !info.ConfiguresInterface {
		if err := configureInterface(dev, rk.IP, rk.Netmask, rk.Gateway, rk.MTU); err != nil {
			return err
		}
	}
	if len(m.PortOpaque) > 0 {
		if err := startPortChild(m.PortOpaque); err != nil {
			return err
		}
	}
	if m.Listeners {
		// Without it the helper reads /proc/PID/net/tcp, which costs more.
		if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG); err == nil {
			diag := os.NewFile(uintptr(fd), "sock_diag")
			defer diag.Close()
			files, names = append(files, diag), append(names, network.FileDiag)
		}
	}
	return s.c.Send(network.Message{Type: network.MsgReady, Dev: dev, Files: names}, files...)
}

func (s *Session) recv(want string) (network.Message, error) {
	r, err := s.c.Recv()
	for _, f := range r.Files {
		f.Close()
	}
	if errors.Is(err, network.ErrClosed) {
		return network.Message{}, errors.New("the network helper exited during the start (see its log, net.log in the box's runtime directory)")
	}
	if err != nil {
		return network.Message{}, err
	}
	switch r.Type {
	case want:
		return r.Message, nil
	case network.MsgAbort:
		return network.Message{}, ErrAborted
	}
	return network.Message{}, fmt.Errorf("network handshake: got %q, want %q", r.Type, want)
}

// abort tells the helper why the box side failed. The helper reports it;
// when it cannot be told, err is the init's to print.
func (s *Session) abort(err error) error {
	if s.c.Send(network.Message{Type: network.MsgAbort, Error: err.Error()}) != nil {
		return err
	}
	return &reported{err}
}

func childDriver(name string) (rknet.ChildDriver, error) {
	switch name {
	case network.DriverGvisor:
		return newGvisorChild(), nil
	case network.DriverPasta:
		return pasta.NewChildDriver(), nil
	case network.DriverSlirp4netns:
		return slirp4netns.NewChildDriver(), nil
	}
	return nil, fmt.Errorf("unknown network driver %q", name)
}

// startPortChild runs the box side of rootlesskit's builtin port driver
// (servePorts) for the box's life. It listens on a socket in the helper's
// state directory; the helper connects to it as the host user, who is not
// the init's owner on the host, so the socket is created world-writable
// (the directory is private to the user). It returns once the socket
// listens, or the driver failed.
func startPortChild(opaque map[string]string) error {
	old := unix.Umask(0)
	defer unix.Umask(old)
	errc := make(chan error, 1)
	ready := make(chan struct{})
	go func() { errc <- servePorts(opaque, ready) }()
	select {
	case <-ready:
		return nil
	case err := <-errc:
		return fmt.Errorf("port forwarding in the box: %w", err)
	case <-time.After(5 * time.Second):
		return errors.New("port forwarding in the box: the port driver did not start")
	}
}

// boxSysctls lets everyone in the box bind any port and ping, as Docker
// does: the network namespace is the box's own, and a dev server on port
// 80 should not need root. Failures leave the kernel's defaults.
func boxSysctls() {
	_ = os.WriteFile("/proc/sys/net/ipv4/ip_unprivileged_port_start", []byte("0"), 0)
	// Both ends of the range must be mapped group ids.
	if high := highestMapped("/proc/self/gid_map"); high > 0 {
		_ = os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 "+strconv.FormatUint(high, 10)), 0)
	}
}

// highestMapped returns the highest id inside the namespace of an id map.
func highestMapped(path string) uint64 {
	b, _ := os.ReadFile(path)
	var high uint64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		in, err1 := strconv.ParseUint(f[0], 10, 32)
		n, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 == nil && err2 == nil && n > 0 && in+n-1 > high {
			high = in + n - 1
		}
	}
	return high
}
