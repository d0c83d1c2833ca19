package box

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/network"
	"github.com/spf13/cobra"
)

// addNetworkFlags adds the network flags of create (and of shell's
// implicit create).
func addNetworkFlags(c *cobra.Command, o *dbox.CreateOptions) {
	fl := c.Flags()
	fl.StringVar(&o.Net, "net", "", "network: slirp (private, user-mode), host (share the host's) or none; or a driver: gvisor, pasta, slirp4netns (default "+dbox.DefaultNet+")")
	fl.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a box port on the host: [HOST_IP:]HOST_PORT:BOX_PORT[/tcp|/udp] (HOST_IP defaults to 127.0.0.1, which every local user can reach; a taken host port is an error)")
	fl.BoolVar(&o.NoAutoPorts, "no-auto-ports", false, "do not forward the ports the box listens on to the host's 127.0.0.1 (reachable by every local user; a box with a home of its own never does: publish with -p)")
	fl.BoolVar(&o.HostLoopback, "host-loopback", false, cmdutil.HostLoopbackHelp)
	fl.BoolVar(&o.NoHostLoopback, "no-host-loopback", false, cmdutil.NoHostLoopbackHelp)
	_ = c.RegisterFlagCompletionFunc("net", cobra.FixedCompletions(network.Modes, cobra.ShellCompDirectiveNoFileComp))
}

// PortsOptions are the flags and argument of `devbox ports`.
type PortsOptions struct {
	Name string
	JSON bool
}

// NewCmdPorts builds `devbox ports`.
func NewCmdPorts(f *cmdutil.Factory, runF func(*PortsOptions) error) *cobra.Command {
	o := PortsOptions{}
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
			o.Name = args[0]
			if runF != nil {
				return runF(&o)
			}
			return portsRun(c.Context(), f, &o)
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array (schema in docs/json.md)")
	return c
}

func portsRun(ctx context.Context, f *cmdutil.Factory, o *PortsOptions) error {
	e, err := open(ctx, f)
	if err != nil {
		return err
	}
	s, err := e.mgr.Ports(o.Name)
	if err != nil {
		return err
	}
	if o.JSON {
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
}
