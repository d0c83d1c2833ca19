package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	rknet "github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/network/gvisor"
	"github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/network/pasta"
	"github.com/devbox-dev/devbox/network/slirp4netns"
	"github.com/devbox-dev/devbox/network/tapfilter"
)

// memoryLimit is the helper's soft memory limit (runtime/debug), above
// what the relays are charged at most.
const memoryLimit = 48 << 20

// Main is the body of the helper stage. It returns when the box is gone.
func Main() int {
	logrus.SetOutput(os.Stderr)
	logrus.SetLevel(logrus.WarnLevel)
	// The relays' buffers are bounded (network/gvisor/budget.go); a soft
	// limit makes the collector return freed ones before the heap doubles.
	debug.SetMemoryLimit(memoryLimit)
	// The helper has a session of its own; only SIGTERM (stop it) matters.
	// (Caught, not ignored: an ignored signal stays ignored in pasta and
	// slirp4netns, and pasta refuses to start then.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	var o host.Options
	if err := json.NewDecoder(os.Stdin).Decode(&o); err != nil {
		fmt.Fprintf(os.Stderr, "devbox: network helper: reading options: %v\n", err)
		return 125
	}
	os.Stdin.Close()
	conn, err := network.FileConn(os.NewFile(host.FDConn, "net-conn"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "devbox: network helper: %v\n", err)
		return 125
	}
	h := &helper{o: o, log: os.Stderr, conn: conn, status: os.NewFile(host.FDStatus, "net-status"),
		auto: map[int]*forward{}, stop: make(chan struct{})}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		conn.Close() // as if the box were gone: clean up and exit
	}()
	err = h.run()
	h.teardown()
	if err != nil {
		fmt.Fprintf(os.Stderr, "devbox: network helper: %v\n", err)
		return 1
	}
	return 0
}

type forward struct {
	network.Port
	id int
}

type helper struct {
	o        host.Options
	log      io.Writer
	conn     *network.Conn
	status   *os.File
	reported bool
	pid      int
	// cgroupHome is the cgroup the helper left for the box's ("" when it
	// did not).
	cgroupHome string

	diag      *os.File // sock_diag socket in the box's network namespace
	pd        rknet.ParentDriver
	cleanup   func() error
	ports     port.ParentDriver
	portQuit  chan struct{}
	netnsLink string
	// stateDev and stateIno identify the state directory this helper made.
	stateDev, stateIno uint64

	mu        sync.Mutex
	published []*forward
	auto      map[int]*forward // by box port
	stop      chan struct{}
	pollDone  chan struct{}
}

// report tells the CLI how the start went (once).
func (h *helper) report(err error) {
	if h.reported || h.status == nil {
		return
	}
	h.reported = true
	s := host.Status{Ready: err == nil}
	if err != nil {
		s.Error = err.Error()
	}
	b, _ := json.Marshal(s)
	_, _ = h.status.Write(append(b, '\n'))
}

// down tells the CLI that the box's ports and driver processes are gone.
func (h *helper) down() {
	if h.status == nil {
		return
	}
	h.report(errors.New("the network helper stopped"))
	b, _ := json.Marshal(host.Status{Down: true})
	_, _ = h.status.Write(append(b, '\n')) // the CLI may be gone: no matter
	h.status.Close()
	h.status = nil
}

// fail reports err to the CLI and tells the init to give up quietly.
func (h *helper) fail(err error) error {
	// Logged too: a box that set its network up early (Hello's Early)
	// does not wait for this report, and a replayed run does not read it.
	fmt.Fprintf(h.log, "devbox: network helper: %v\n", err)
	h.report(err)
	_ = h.conn.Send(network.Message{Type: network.MsgAbort, Error: err.Error()})
	return nil // reported; the helper itself did its job
}

// makeStateDir makes the helper's state directory. Mkdir, not MkdirAll:
// the box's runtime directory is devbox's to create and remove; a helper
// that starts after devbox gave up and removed it must not create it
// again. One left there by the helper of the box's previous start (still
// tearing down after its box died: a crash, a kill) is moved aside and
// removed, and this helper's directory is a new one, which that helper's
// clean-up then leaves alone (ownsStateDir).
func (h *helper) makeStateDir() error {
	dir := h.o.StateDir()
	err := os.Mkdir(dir, 0o700)
	// The previous helper may remove its directory between our Mkdir
	// and Rename (ENOENT): then the path is free, and Mkdir again.
	for try := 0; errors.Is(err, os.ErrExist) && try < 3; try++ {
		aside := dir + ".old-" + strconv.Itoa(os.Getpid())
		if err = os.Rename(dir, aside); err == nil {
			// The new one first: while the old one exists, its inode
			// number cannot be the new one's.
			err = os.Mkdir(dir, 0o700)
			_ = os.RemoveAll(aside)
		} else if errors.Is(err, os.ErrNotExist) {
			err = os.Mkdir(dir, 0o700)
		}
	}
	var st unix.Stat_t
	if err == nil {
		err = unix.Lstat(dir, &st)
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	h.stateDev, h.stateIno = st.Dev, st.Ino
	return nil
}

// ownsStateDir reports whether the state directory is still the one this
// helper made.
func (h *helper) ownsStateDir() bool {
	var st unix.Stat_t
	return h.stateIno != 0 && unix.Lstat(h.o.StateDir(), &st) == nil && st.Dev == h.stateDev && st.Ino == h.stateIno
}

func (h *helper) run() error {
	if err := h.makeStateDir(); err != nil {
		return h.fail(err)
	}
	hello, err := h.conn.Recv()
	if errors.Is(err, network.ErrClosed) {
		h.report(nil) // the box ended before it needed a network
		return nil
	}
	if err != nil {
		return h.fail(err)
	}
	if hello.Type != network.MsgHello || hello.PID <= 0 {
		return h.fail(fmt.Errorf("network handshake: expected hello with credentials, got %q", hello.Type))
	}
	if hello.Version != network.WireVersion {
		return h.fail(fmt.Errorf("network handshake: the box speaks version %d, this devbox %d (hint: a running box keeps its old devbox; stop it and start it again)", hello.Version, network.WireVersion))
	}
	h.pid = hello.PID
	if home, err := joinBoxCgroup(cgroupRoot, h.o.Cgroup); err != nil {
		fmt.Fprintf(h.log, "devbox: network helper: joining the box's cgroup: %v\n", err)
	} else {
		h.cgroupHome = home
	}
	pd, err := h.newParentDriver()
	if err != nil {
		return h.fail(err)
	}
	h.pd = pd
	netns := ""
	if h.o.Driver == network.DriverPasta {
		// pasta quits when a netns it was given by path disappears: the
		// link is removed at teardown, so pasta never outlives the helper.
		h.netnsLink = filepath.Join(h.o.StateDir(), "netns")
		_ = os.Remove(h.netnsLink)
		if err := os.Symlink("/proc/"+strconv.Itoa(h.pid)+"/ns/net", h.netnsLink); err != nil {
			return h.fail(err)
		}
		netns = h.netnsLink
	}
	msg, cleanup, err := pd.ConfigureNetwork(h.pid, h.o.StateDir(), netns)
	h.cleanup = cleanup
	if err != nil {
		return h.fail(driverError(h.o.Driver, err))
	}
	if err := h.filterDriverTap(pd); err != nil {
		return h.fail(err)
	}
	ports := len(h.o.Publish) > 0 || h.o.AutoPorts
	if hello.Early {
		// The box set up its network alone and runs its command already:
		// it sends Ready next and reads nothing (network.Message.Early).
		if h.o.Driver != network.DriverGvisor || ports {
			return h.fail(fmt.Errorf("network handshake: the box set its network up alone, which the %s driver with ports cannot do (hint: a bug in devbox)", h.o.Driver))
		}
		return h.attachEarly(pd.(*gvisor.Parent))
	}
	// Ports need rootlesskit's builtin port driver, whose box side runs in
	// the init; a box without published or forwarded ports does without.
	portsReady := func() error { return nil }
	var portOpaque map[string]string
	if ports {
		pdrv, err := builtin.NewParentDriver(h.log, h.o.StateDir(), false, "")
		if err != nil {
			return h.fail(fmt.Errorf("port driver: %w", err))
		}
		h.ports = pdrv
		portOpaque = pdrv.OpaqueForChild()
		// The port driver's box side opens its readiness FIFO before it
		// listens, and the open blocks until this side opened it too:
		// start this side first.
		portsReady = h.startPorts()
	}
	cfg := &network.DriverConfig{Dev: msg.Dev, IP: msg.IP, Netmask: msg.Netmask, Gateway: msg.Gateway,
		DNS: msg.DNS, MTU: msg.MTU, Opaque: msg.NetworkDriverOpaque}
	if err := h.conn.Send(network.Message{Type: network.MsgConfigure, Driver: h.o.Driver, Net: cfg, PortOpaque: portOpaque, Listeners: h.o.AutoPorts}); err != nil {
		return err
	}
	ready, err := h.conn.Recv()
	if err != nil {
		return h.fail(fmt.Errorf("the box exited while its network was set up: %w", err))
	}
	if ready.Type == network.MsgAbort {
		h.report(errors.New(ready.Error))
		return nil
	}
	if ready.Type != network.MsgReady {
		return h.fail(fmt.Errorf("network handshake: expected ready, got %q", ready.Type))
	}
	files := map[string]*os.File{}
	for i, f := range ready.Files {
		if i < len(ready.Message.Files) && files[ready.Message.Files[i]] == nil {
			files[ready.Message.Files[i]] = f
		} else {
			f.Close()
		}
	}
	h.diag = files[network.FileDiag]
	if g, ok := pd.(*gvisor.Parent); ok {
		tap := files[network.FileTap]
		if tap == nil {
			return h.fail(errors.New("network handshake: the box did not send its tap device"))
		}
		if err := g.Attach(tap); err != nil {
			return h.fail(err)
		}
	} else if tap := files[network.FileTap]; tap != nil {
		tap.Close()
	}
	if err := portsReady(); err != nil {
		return h.fail(err)
	}
	for _, p := range h.o.Publish {
		f, err := h.addPort(p, "127.0.0.1")
		if err != nil {
			return h.fail(publishError(p, err))
		}
		h.published = append(h.published, f)
	}
	if err := h.conn.Send(network.Message{Type: network.MsgGo}); err != nil {
		return err
	}
	h.writeState()
	h.report(nil)
	if h.o.AutoPorts {
		h.pollDone = make(chan struct{})
		go h.poll()
	}
	return h.serve()
}

// attachEarly starts the stack on the tap of a box that set its network up
// alone (Hello's Early) and serves it until the box is gone. The box sent
// Ready before its command ran, so a box that is gone already (a short
// command, or an init that failed and said why) still queued it; the stack
// is not started for nothing then.
func (h *helper) attachEarly(g *gvisor.Parent) error {
	ready, err := h.conn.Recv()
	if errors.Is(err, network.ErrClosed) {
		h.report(nil) // the init failed before Ready, and reported why
		return nil
	}
	if err != nil {
		return h.fail(err)
	}
	var tap *os.File
	for i, f := range ready.Files {
		if tap == nil && ready.Type == network.MsgReady && i < len(ready.Message.Files) && ready.Message.Files[i] == network.FileTap {
			tap = f
		} else {
			f.Close()
		}
	}
	if tap == nil {
		return h.fail(fmt.Errorf("network handshake: expected ready with the box's tap device, got %q", ready.Type))
	}
	if h.conn.PeerGone() {
		tap.Close()
		h.report(nil)
		return nil
	}
	if err := g.Attach(tap); err != nil {
		return h.fail(err)
	}
	h.writeState()
	h.report(nil)
	return h.serve()
}

// serve waits until the box is gone: it holds its end until it exits.
func (h *helper) serve() error {
	for {
		r, err := h.conn.Recv()
		if err != nil {
			return nil
		}
		for _, f := range r.Files {
			f.Close()
		}
	}
}

// filterDriverTap attaches devbox's tap filter (network/tapfilter) to the
// end of the box's tap that pasta or slirp4netns holds, before the box
// runs anything: both would connect a frame the box's root writes to
// 127.0.0.1 to the host's loopback, and, without host loopback, pasta
// would dial the gateway's address on the host's network. gvisor's
// Attach sets the filter itself.
func (h *helper) filterDriverTap(pd rknet.ParentDriver) error {
	p, ok := pd.(interface{ PID() int })
	if !ok {
		return nil
	}
	var drop []netip.Prefix
	if !h.o.HostLoopback {
		// The gateway, and link-local addresses: only the host reaches
		// what answers there (a cloud's metadata service, with the
		// machine's credentials).
		drop = []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(network.Gateway), 32),
			netip.PrefixFrom(netip.MustParseAddr(pasta.Gateway6), 128), network.LinkLocal4}
	}
	err := tapfilter.AttachToProcess(p.PID(), drop...)
	if err == nil {
		return nil
	}
	if h.o.HostLoopback {
		// The box may reach the host's loopback anyway.
		fmt.Fprintf(h.log, "devbox: %s: %v\n", h.o.Driver, err)
		return nil
	}
	return fmt.Errorf("network driver %s: cannot keep the box away from the host's loopback: %v (hint: use --net gvisor, which needs no tap filter; or allow it with --host-loopback)", h.o.Driver, err)
}

func (h *helper) newParentDriver() (rknet.ParentDriver, error) {
	mtu := h.o.MTU
	if mtu <= 0 {
		mtu = network.MTU
	}
	switch h.o.Driver {
	case network.DriverGvisor:
		return gvisor.NewParentDriver(gvisor.Options{MTU: mtu, HostLoopback: h.o.HostLoopback, DNS: h.o.DNS, Log: h.log,
			Names: network.LocalNames(h.o.Hostname, h.o.HostLoopback)}), nil
	case network.DriverPasta:
		d, err := pasta.NewParentDriver(pasta.Options{MTU: mtu, HostLoopback: h.o.HostLoopback, IPv6: h.o.IPv6, Log: h.log})
		if err != nil {
			return nil, driverError(h.o.Driver, err)
		}
		return d, nil
	case network.DriverSlirp4netns:
		d, err := slirp4netns.NewParentDriver(slirp4netns.Options{MTU: mtu, HostLoopback: h.o.HostLoopback, IPv6: h.o.IPv6, Log: h.log})
		if err != nil {
			return nil, driverError(h.o.Driver, err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown network driver %q", h.o.Driver)
}

// driverError adds what the user can do about a failing driver.
func driverError(driver string, err error) error {
	msg := err.Error()
	hint := "run devbox doctor; --net gvisor needs no program on the host"
	switch {
	case strings.Contains(msg, "/dev/net/tun") || strings.Contains(msg, "tun"):
		hint = "check that " + network.TunPath + " exists and is mode 0666 (sudo modprobe tun); or use --net host"
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "not installed"):
		hint = "install it, or use --net gvisor, which needs no program on the host"
	}
	return fmt.Errorf("network driver %s: %s (hint: %s)", driver, strings.TrimSpace(msg), hint)
}

// publishError names the port and what to do when publishing fails.
func publishError(p network.PortSpec, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("cannot publish %s: %s/%s is already in use on the host (hint: choose another host port, e.g. -p %d:%d, or stop what listens there: ss -lntup | grep :%d)",
			p, p.HostAddr(), p.Proto, p.HostPort+1, p.BoxPort, p.HostPort)
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("cannot publish %s: the host has no address %s (hint: use 127.0.0.1, 0.0.0.0 or one of the host's addresses)", p, p.HostIP)
	}
	return fmt.Errorf("cannot publish %s: %w", p, err)
}

// startPorts starts the host side of the port driver and returns the wait
// for its handshake with the box side.
func (h *helper) startPorts() func() error {
	h.portQuit = make(chan struct{})
	ready := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() { errc <- h.ports.RunParentDriver(ready, h.portQuit, nil) }()
	return func() error {
		select {
		case <-ready:
			return nil
		case err := <-errc:
			return fmt.Errorf("port driver: %w", err)
		case <-time.After(30 * time.Second):
			return errors.New("port driver: the box side did not answer")
		}
	}
}

// addPort forwards p to boxIP inside the box.
func (h *helper) addPort(p network.PortSpec, boxIP string) (*forward, error) {
	a := netip.MustParseAddr(p.HostIP)
	proto := p.Proto + "4"
	if a.Is6() {
		proto = p.Proto + "6"
	}
	st, err := h.ports.AddPort(context.Background(), port.Spec{
		Proto: proto, ParentIP: p.HostIP, ParentPort: p.HostPort, ChildIP: boxIP, ChildPort: p.BoxPort,
	})
	if err != nil {
		return nil, err
	}
	return &forward{Port: network.Port{PortSpec: p}, id: st.ID}, nil
}

// poll forwards the TCP ports the box listens on, every PollMillis.
func (h *helper) poll() {
	defer close(h.pollDone)
	every := time.Duration(h.o.PollMillis) * time.Millisecond
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	start := unprivilegedPortStart()
	skip := map[int]bool{}
	for _, p := range h.o.Publish {
		if p.Proto == "tcp" {
			skip[p.BoxPort] = true
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		h.syncAuto(start, skip)
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
	}
}

func (h *helper) listeners() ([]Listener, bool) {
	if h.diag != nil {
		ls, err := diagListeners(h.diag)
		if err == nil {
			return ls, true
		}
		fmt.Fprintf(h.log, "devbox: network helper: %v; reading /proc/%d/net/tcp instead\n", err, h.pid)
		h.diag.Close()
		h.diag = nil
	}
	var all []Listener
	ok := false
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(h.pid) + "/net/" + f)
		if err != nil {
			continue
		}
		ok = true
		all = append(all, ParseProcNetTCP(string(b))...)
	}
	return all, ok
}

// syncAuto adds a forward for each new listener and removes those whose
// listener closed.
func (h *helper) syncAuto(start int, skip map[int]bool) {
	ls, ok := h.listeners()
	if !ok {
		return // the box is going away
	}
	want := forwardable(ls, skip)
	changed := false
	h.mu.Lock()
	defer h.mu.Unlock()
	for bp, f := range h.auto {
		if dial, ok := want[bp]; ok && dial.String() == f.BoxIP {
			continue
		}
		if f.NotForwarded == "" {
			_ = h.ports.RemovePort(context.Background(), f.id)
		}
		delete(h.auto, bp)
		changed = true
	}
	for bp, dial := range want {
		if f, ok := h.auto[bp]; ok && f.NotForwarded == "" {
			continue
		}
		spec := network.PortSpec{Proto: "tcp", HostIP: "127.0.0.1", HostPort: hostPort(bp, start), BoxPort: bp}
		var f *forward
		var err error
		if spec.HostPort == 0 {
			err = errors.New("no host port for it")
		} else {
			f, err = h.addPort(spec, dial.String())
		}
		if err != nil {
			// Taken on the host: that listener is someone else's (maybe
			// another user's), so the box's port is not forwarded at all
			// rather than elsewhere; said once, retried at every poll.
			if old, ok := h.auto[bp]; ok && old.NotForwarded != "" {
				continue
			}
			why := notForwarded(spec, err)
			fmt.Fprintf(h.log, "devbox: box port %d/tcp is not forwarded: %s\n", bp, why)
			h.auto[bp] = &forward{Port: network.Port{PortSpec: spec, Auto: true, BoxIP: dial.String(), NotForwarded: why}, id: -1}
			changed = true
			continue
		}
		f.Auto, f.BoxIP = true, dial.String()
		h.auto[bp] = f
		changed = true
	}
	if changed {
		h.writeStateLocked()
	}
}

// notForwarded says why spec could not be forwarded.
func notForwarded(spec network.PortSpec, err error) string {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Sprintf("%s/tcp on the host is taken by another program, which would receive connections meant for the box (hint: stop it, see ss -lntp | grep :%d, or listen on another port in the box)", spec.HostAddr(), spec.HostPort)
	}
	return fmt.Sprintf("%s/tcp on the host: %v", spec.HostAddr(), err)
}

func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

func (h *helper) writeState() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writeStateLocked()
}

func (h *helper) writeStateLocked() {
	s := &host.State{Driver: h.o.Driver, BoxIP: network.BoxIP, PID: os.Getpid(), Ports: []network.Port{}}
	for _, f := range h.published {
		s.Ports = append(s.Ports, f.Port)
	}
	var auto []network.Port
	for _, f := range h.auto {
		auto = append(auto, f.Port)
	}
	sort.Slice(auto, func(i, j int) bool { return auto[i].BoxPort < auto[j].BoxPort })
	s.Ports = append(s.Ports, auto...)
	if err := host.WriteState(h.o.RunDir, s); err != nil {
		fmt.Fprintf(h.log, "devbox: network helper: writing %s: %v\n", host.PortsFile(h.o.RunDir), err)
	}
}

func (h *helper) driverCleanup() {
	if h.cleanup != nil {
		if err := h.cleanup(); err != nil {
			fmt.Fprintf(h.log, "devbox: network helper: %v\n", err)
		}
	}
}

// teardown undoes everything, in reverse.
func (h *helper) teardown() {
	close(h.stop)
	if h.pollDone != nil {
		<-h.pollDone
	}
	_ = os.Remove(host.PortsFile(h.o.RunDir))
	if h.ports != nil {
		h.mu.Lock()
		for _, f := range h.published {
			_ = h.ports.RemovePort(context.Background(), f.id)
		}
		for _, f := range h.auto {
			if f.NotForwarded == "" {
				_ = h.ports.RemovePort(context.Background(), f.id)
			}
		}
		h.mu.Unlock()
		if h.portQuit != nil {
			close(h.portQuit)
		}
	}
	// Only this helper's own state directory: the helper of the box's next
	// start may have made a new one at the same path already.
	owned := h.ownsStateDir()
	if h.netnsLink != "" && owned {
		_ = os.Remove(h.netnsLink)
	}
	// pasta and slirp4netns must be gone before the CLI hears "down". The
	// gvisor stack is this process, which the CLI need not wait for:
	// stopping it waits for its goroutines (the tap itself is persistent,
	// network/child.OpenTap: the kernel removes it with the namespace).
	_, inProcess := h.pd.(*gvisor.Parent)
	if !inProcess {
		h.driverCleanup()
	}
	if owned {
		_ = os.RemoveAll(h.o.StateDir())
	}
	// Out of the box's cgroup before the CLI hears "down": it removes
	// that cgroup (killing what is left in it) once the box is gone.
	if err := leaveBoxCgroup(cgroupRoot, h.cgroupHome); err != nil {
		fmt.Fprintf(h.log, "devbox: network helper: leaving the box's cgroup: %v\n", err)
	}
	h.down()
	if inProcess {
		h.driverCleanup()
	}
	h.conn.Close()
}
