package box

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/network"
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/spf13/cobra"
)

// DefaultNet is the network of a new box when neither --net nor
// [network] mode says.
const DefaultNet = network.ModeSlirp

// addNetworkFlags adds the network flags of create (and of shell's
// implicit create).
func addNetworkFlags(c *cobra.Command, o *CreateOptions) {
	fl := c.Flags()
	fl.StringVar(&o.Net, "net", "", "network: slirp (private, user-mode), host (share the host's) or none; or a driver: gvisor, pasta, slirp4netns (default "+DefaultNet+")")
	fl.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a box port on the host: [HOST_IP:]HOST_PORT:BOX_PORT[/tcp|/udp] (HOST_IP defaults to 127.0.0.1, which every local user can reach; a taken host port is an error)")
	fl.BoolVar(&o.NoAutoPorts, "no-auto-ports", false, "do not forward the ports the box listens on to the host's 127.0.0.1 (reachable by every local user; a box with a home of its own never does: publish with -p)")
	fl.BoolVar(&o.HostLoopback, "host-loopback", false, cmdutil.HostLoopbackHelp)
	fl.BoolVar(&o.NoHostLoopback, "no-host-loopback", false, cmdutil.NoHostLoopbackHelp)
	_ = c.RegisterFlagCompletionFunc("net", cobra.FixedCompletions(network.Modes, cobra.ShellCompDirectiveNoFileComp))
}

// createNetwork checks the network flags of a new box and returns the mode
// its record keeps. "slirp" stays "slirp": the driver is picked at every
// start, from what the host has then.
func (e *env) createNetwork(o CreateOptions) (string, error) {
	cfg, err := e.f.Config()
	if err != nil {
		return "", err
	}
	mode := o.Net
	if mode == "" {
		mode = cmdutil.DefaultMode(cfg, DefaultNet)
	}
	if err := cmdutil.ValidateNetwork(mode, cmdutil.NetworkFlags{Publish: o.Publish, HostLoopback: o.HostLoopback, NoHostLoopback: o.NoHostLoopback}); err != nil {
		return "", err
	}
	return network.Canonical(mode), nil
}

// boxNetwork is the network of one start of a box.
type boxNetwork struct {
	choice cmdutil.NetworkChoice
	h      *nethost.Helper
}

// chooseNetwork resolves box r's network on this host, now.
func (e *env) chooseNetwork(r *rbox.Record) (*boxNetwork, error) {
	cfg, err := e.f.Config()
	if err != nil {
		return nil, err
	}
	mode := r.Net
	if mode == "" {
		mode = network.ModeHost // records from before user-mode networking
	}
	c, err := cmdutil.ChooseNetwork(cfg, mode, cmdutil.NetworkFlags{Publish: r.Publish, NoHostLoopback: r.NoHostLoopback, NoAutoPorts: r.NoAutoPorts})
	if err != nil {
		return nil, fmt.Errorf("box %s: %w", r.Name, err)
	}
	// A sandbox's ports reach the host's loopback only when published
	// (-p): forwarded on their own, they would stand in for host services
	// the user's clients expect there (docs/security.md, "Host loopback").
	c.AutoPorts = c.AutoPorts && rbox.IsDevBox(r, hostAccount(e.m).Home)
	return &boxNetwork{choice: c}, nil
}

// apply sets the spec's network; the handshake descriptor follows the
// agent's listener (fd 3).
func (n *boxNetwork) apply(spec *runtime.Spec, hostResolv string) {
	spec.Net = n.choice.Driver
	if !n.choice.UserMode() {
		return
	}
	spec.Hosts = network.EtcHosts(spec.Hostname, n.choice.HostLoopback)
	n.choice.Hostname = spec.Hostname
	spec.ResolvConf = network.ResolvConf(hostResolv)
	spec.NetFD = 4
}

// start prepares the box's network helper, detached like the box, and
// returns the file for the init (nil without user-mode networking); the
// process starts in started.
func (n *boxNetwork) start(runDir string) (*os.File, error) {
	if !n.choice.UserMode() {
		return nil, nil
	}
	h, err := nethost.Prepare(rootless.HostStage(cmdutil.NetExe(), nethost.Stage), n.choice.HelperOptions(runDir))
	if err != nil {
		return nil, err
	}
	n.h = h
	return h.InitEnd, nil
}

func (n *boxNetwork) started() {
	if n != nil && n.h != nil {
		n.h.InitStarted()
	}
}

// failed returns why the helper failed the start, if it did.
func (n *boxNetwork) failed() error {
	if n == nil || n.h == nil {
		return nil
	}
	n.h.CloseInitEnd()
	return n.h.Err(2 * time.Second)
}

// networkState is the network part of devbox inspect: nil when the box
// does not run with user-mode networking.
func (e *env) networkState(r *rbox.Record) *nethost.State {
	s, err := nethost.ReadState(e.bs.RunDir(r.ID))
	if err != nil {
		return nil
	}
	return s
}

// NewCmdPorts builds `devbox ports`.
func NewCmdPorts(f *cmdutil.Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ports NAME",
		Short: "List the ports of a running box that are reachable on the host",
		Long: "List the ports of running box NAME that are reachable on the host: those published\n" +
			"with -p and those forwarded automatically because a process in the box listens\n" +
			"on them (to the host's 127.0.0.1, at the same number; 80 → 8080 for a privileged one).\n" +
			"A port whose host port another program holds is shown as not forwarded, with why:\n" +
			"devbox never moves it elsewhere. Ports on 127.0.0.1 are reachable by every local user.",
		Example:           "  devbox ports dev\n  devbox ports dev --json",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cmdutil.FirstArg(cmdutil.CompleteBoxes(f)),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := open(c.Context(), f)
			if err != nil {
				return err
			}
			r, err := e.bs.Get(args[0])
			if err != nil {
				return err
			}
			s, err := nethost.ReadState(e.bs.RunDir(r.ID))
			if errors.Is(err, fs.ErrNotExist) {
				if !e.bs.Running(r.ID) {
					return fmt.Errorf("box %s is not running (hint: devbox shell %s starts it)", r.Name, r.Name)
				}
				return fmt.Errorf("box %s has no user-mode network (its --net is %s), so no ports of its own (hint: devbox create --net slirp)", r.Name, orHost(r.Net))
			}
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(f.IOStreams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(s.Ports)
			}
			tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROTO\tHOST\tBOX\tHOW")
			for _, p := range s.Ports {
				how := "published"
				if p.Auto {
					how = "auto"
				}
				if p.NotForwarded != "" {
					how = "not forwarded: " + p.NotForwarded
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Proto, p.HostAddr(), strconv.Itoa(p.BoxPort), how)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array (schema in docs/json.md)")
	return c
}

func orHost(net string) string {
	if net == "" {
		return network.ModeHost
	}
	return net
}
