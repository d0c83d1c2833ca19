// Package run implements `devbox run`: an ephemeral box for one command.
package run

import (
	"context"
	"fmt"
	"io"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/network"
	"github.com/spf13/cobra"
)

// Options are the parsed flags of `devbox run`.
type Options struct {
	box.RunOptions
	// Interactive is docker's -i: stdin is always passed on, so it only
	// makes -it work.
	Interactive bool
}

// NewCmdRun builds the command.
func NewCmdRun(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [--] [COMMAND [ARG...]]",
		Short: "Run a command in a new, ephemeral box (removed when it exits)",
		Long: "Run a command in a new box made from IMAGE, in its own user, mount, PID, UTS,\n" +
			"IPC and network namespaces: docker run --rm. The command's exit code is devbox's.\n\n" +
			"It is a sandbox: the command runs as the image's user, in the image's working\n" +
			"directory (or -w), without your home or current directory; nothing of the host\n" +
			"is reachable. To build your project with the box's tools, use a dev box, which\n" +
			"sees your home and starts in the current directory: devbox shell NAME -- make.\n\n" +
			"Flags go before IMAGE; everything after IMAGE (after --) is the command's. stdin is\n" +
			"always passed on (-i is accepted, so docker's -it works); a terminal is allocated\n" +
			"when stdin and stdout are terminals, or with -t.\n\n" +
			"The box is removed when the command exits, unless --name or --keep is given: then\n" +
			"it is kept as a box (sandboxed, with an empty home of its own) that devbox ls lists\n" +
			"and devbox shell, exec, rm and prune reach; a name in use is refused.",
		Example: "  devbox run debian -- cat /etc/os-release\n  echo hi | devbox run busybox -- cat\n  devbox run -e FOO=bar -w /tmp alpine -- sh -c 'echo $FOO; pwd'",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Image, opts.Cmd = args[0], args[1:]
			if len(opts.Cmd) > 0 && opts.Cmd[0] == "--" {
				opts.Cmd = opts.Cmd[1:]
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // everything after IMAGE belongs to the command
	fl.StringVar(&opts.Name, "name", "", "name the box and keep it after the command exits")
	fl.BoolVar(&opts.Keep, "keep", false, "keep the box after the command exits")
	fl.StringArrayVarP(&opts.Env, "env", "e", nil, "set KEY=VALUE in the box (KEY alone copies the host's value)")
	fl.StringVarP(&opts.Workdir, "workdir", "w", "", "working directory inside the box")
	fl.StringVarP(&opts.User, "user", "u", "", "user[:group] to run as (name or number)")
	fl.StringVar(&opts.Hostname, "hostname", "", "the box's hostname (default: its name, or devbox)")
	fl.StringVar(&opts.Net, "net", "", "network: slirp (private, user-mode), none (only lo) or host; or a driver: gvisor, pasta, slirp4netns (default "+box.DefaultNet+")")
	fl.StringArrayVarP(&opts.Publish, "publish", "p", nil, "publish a box port on the host: [HOST_IP:]HOST_PORT:BOX_PORT[/tcp|/udp] (HOST_IP defaults to 127.0.0.1, which every local user can reach; a taken host port is an error)")
	fl.BoolVar(&opts.HostLoopback, "host-loopback", false, cmdutil.HostLoopbackHelp)
	fl.BoolVar(&opts.NoHostLoopback, "no-host-loopback", false, cmdutil.NoHostLoopbackHelp)
	fl.StringVar(&opts.Pull, "pull", "missing", "pull the image: missing, always or never")
	fl.StringVar(&opts.Platform, "platform", "", "image platform when pulling (os/arch[/variant])")
	fl.BoolVarP(&opts.TTY, "tty", "t", false, "allocate a terminal even when stdin is not one")
	fl.BoolVarP(&opts.NoTTY, "no-tty", "T", false, "never allocate a terminal")
	fl.BoolVarP(&opts.Interactive, "interactive", "i", false, "pass stdin on (always done; accepted for docker's -i, so -it works)")
	cmdutil.AddLimitFlags(fl, &opts.Limits)
	fl.StringArrayVar(&opts.CapAdd, "cap-add", nil, "add a capability to the box's default set (e.g. NET_RAW, SYS_PTRACE, ALL)")
	fl.StringArrayVar(&opts.CapDrop, "cap-drop", nil, "drop a capability from the box's default set (e.g. CHOWN, ALL)")
	fl.StringArrayVar(&opts.Devices, "device", nil, "bind a host device into the box: a character or block device you can open (/dev/kvm, /dev/ttyUSB0, /dev/video0) or /dev/dri, /dev/bus/usb")
	fl.StringArrayVar(&opts.SecurityOpt, "security-opt", nil, "seccomp=unconfined (no syscall filter) or no-new-privileges=false (setuid programs work)")
	_ = cmd.RegisterFlagCompletionFunc("net", cobra.FixedCompletions(network.Modes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("pull", cobra.FixedCompletions([]string{"missing", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Run runs the box (box.Manager.Run) and passes the command's exit code
// through.
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	m, err := cmdutil.OpenBoxes(ctx, f)
	if err != nil {
		return err
	}
	o := opts.RunOptions
	o.InTTY, o.OutTTY = f.IOStreams.InTTY, f.IOStreams.OutTTY
	res, err := m.Run(o)
	return report(f.IOStreams.ErrOut, res, err)
}

// report says how the run ended, on stderr (an OOM kill, the name of a
// box kept by --keep), and returns the error that gives devbox's exit
// code: the command's passed through, or devbox's own failure.
func report(errOut io.Writer, res box.RunResult, err error) error {
	if res.OOM != nil {
		fmt.Fprintf(errOut, "devbox: %s\n", res.OOM.Msg)
	}
	if n := res.KeptAs; n != "" {
		fmt.Fprintf(errOut, "devbox: kept as box %s (devbox shell %s enters it; devbox rm %s removes it)\n", n, n, n)
	}
	if err != nil {
		return err
	}
	if res.Code != 0 {
		return &cmdutil.ExitError{Code: res.Code}
	}
	return nil
}
