package run

import (
	"os"
	"path/filepath"
	"time"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/network"
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// DefaultNet is --net when neither the flag nor [network] mode says.
const DefaultNet = network.ModeSlirp

// netRun is the user-mode network of one devbox run: the helper lives
// while the box does, in the box's runtime directory.
type netRun struct {
	choice   cmdutil.NetworkChoice
	runDir   string
	h        *nethost.Helper
	finished bool
}

// chooseNetwork resolves the network flags on this host. Every box of
// devbox run is a sandbox: no host loopback unless --host-loopback.
func chooseNetwork(f *cmdutil.Factory, opts *Options) (*netRun, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	mode := opts.Net
	if mode == "" {
		mode = cmdutil.DefaultMode(cfg, DefaultNet)
	}
	c, err := cmdutil.ChooseNetwork(cfg, mode, cmdutil.NetworkFlags{Publish: opts.Publish,
		HostLoopback: opts.HostLoopback, NoHostLoopback: opts.NoHostLoopback, Sandboxed: true, NoAutoPorts: true})
	if err != nil {
		return nil, err
	}
	// Known now: the helper starts while the spec is being made.
	c.Hostname = runtime.Hostname(opts.Hostname, opts.Name)
	return &netRun{choice: c}, nil
}

// apply fills in the box's /etc files and handshake descriptor.
func (n *netRun) apply(spec *runtime.Spec, hostResolv string) {
	if !n.choice.UserMode() {
		return
	}
	spec.Hosts = network.EtcHosts(spec.Hostname, n.choice.HostLoopback)
	spec.ResolvConf = network.ResolvConf(hostResolv)
	spec.NetFD = 3 // the only extra file of devbox run
}

// start starts the helper and returns the files the box gets.
func (n *netRun) start(id string) ([]*os.File, error) {
	if !n.choice.UserMode() {
		return nil, nil
	}
	base, err := rbox.RuntimeBase()
	if err != nil {
		return nil, err
	}
	n.runDir = filepath.Join(base, id[:min(len(id), 16)])
	o := n.choice.HelperOptions(n.runDir)
	h, err := nethost.Prepare(rootless.HostStage(cmdutil.NetExe(), nethost.Stage), o)
	if err != nil {
		return nil, err
	}
	n.h = h
	return []*os.File{h.InitEnd}, nil
}

// started starts the helper process, now that the box init is starting
// (it only needed its end of the handshake), and drops devbox's copy of
// that end.
func (n *netRun) started() {
	if n.h != nil {
		n.h.InitStarted()
	}
}

// finish waits for the helper to clean up after the box and returns why
// the network failed, when the box ended with devbox's failure code.
func (n *netRun) finish(code int) error {
	if n.h == nil {
		return nil
	}
	n.h.CloseInitEnd()
	var err error
	if code == cmdutil.ExitFailure || code < 0 {
		err = n.h.Err(2 * time.Second)
	}
	// With ports published on the host, wait until the helper has closed
	// them, so that the next command can bind them. Otherwise nothing of
	// the box's network outlives the helper's own exit, which needs no
	// waiting for: it has a session of its own and finishes alone.
	if len(n.choice.Publish) > 0 || err != nil {
		n.h.Wait(5 * time.Second)
	}
	_ = os.RemoveAll(n.runDir)
	n.finished = true
	return err
}

// abandon cleans up after a run that failed before finish: the helper ends
// when the box's end of the handshake is gone.
func (n *netRun) abandon() {
	if n.h == nil || n.finished {
		return
	}
	n.h.CloseInitEnd()
	_ = os.RemoveAll(n.runDir)
}
