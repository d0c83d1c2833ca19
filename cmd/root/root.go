// Package root assembles devbox's command tree and runs it: it parses argv
// once, prints each error once (with its hint) and maps it to the exit code.
package root

import (
	"context"
	"errors"
	"fmt"
	"github.com/devbox-dev/devbox/cmd/commit"
	"github.com/devbox-dev/devbox/cmd/transfer"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/cmd/aliases"
	"github.com/devbox-dev/devbox/cmd/box"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/df"
	"github.com/devbox-dev/devbox/cmd/doctor"
	"github.com/devbox-dev/devbox/cmd/export"
	"github.com/devbox-dev/devbox/cmd/factory"
	"github.com/devbox-dev/devbox/cmd/images"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/cmd/pull"
	"github.com/devbox-dev/devbox/cmd/rmi"
	"github.com/devbox-dev/devbox/cmd/run"
	"github.com/devbox-dev/devbox/cmd/stats"
	"github.com/devbox-dev/devbox/cmd/update"
	"github.com/devbox-dev/devbox/cmd/verify"
	"github.com/devbox-dev/devbox/cmd/version"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/spf13/cobra"
)

// Set at build time with -ldflags "-X …/cmd/root.Version=… -X …/cmd/root.Commit=…".
var (
	Version = "dev"
	Commit  = ""
)

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	var logLevel string
	cmd := &cobra.Command{
		Use:           "devbox",
		Short:         "Rootless developer containers: your distro of choice, as yourself, in a second",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       Version,
		PersistentPreRunE: func(c *cobra.Command, args []string) error {
			lvl, err := parseLevel(logLevel)
			if err != nil {
				return cmdutil.FlagErrorf("%v", err)
			}
			*f.Logger = *slog.New(slog.NewTextHandler(f.IOStreams.ErrOut, &slog.HandlerOptions{Level: lvl}))
			os.Setenv("DEVBOX_LOG_LEVEL", logLevel)
			return nil
		},
	}
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
	pf := cmd.PersistentFlags()
	pf.StringVar(f.StoreRoot, "store", "", "store directory for images and boxes (default $XDG_DATA_HOME/devbox; env DEVBOX_STORE)")
	pf.StringVar(&logLevel, "log-level", envOr("DEVBOX_LOG_LEVEL", "warn"), "log level: debug, info, warn or error")

	cmd.AddCommand(pull.NewCmdPull(f, nil))
	cmd.AddCommand(run.NewCmdRun(f, nil))
	cmd.AddCommand(box.NewCmdShell(f), box.NewCmdCreate(f), box.NewCmdExec(f), box.NewCmdLs(f),
		box.NewCmdInspect(f), box.NewCmdStop(f), box.NewCmdRm(f), box.NewCmdPrune(f), box.NewCmdPorts(f))
	cmd.AddCommand(box.NewCmdSnapshot(f), box.NewCmdRollback(f), box.NewCmdClone(f), box.NewCmdAssemble(f))
	cmd.AddCommand(stats.NewCmdStats(f, nil), update.NewCmdUpdate(f, nil))
	cmd.AddCommand(export.NewCmdExport(f), export.NewCmdUnexport(f), box.NewCmdLaunch(f))
	cmd.AddCommand(images.NewCmdImages(f, nil))
	cmd.AddCommand(rmi.NewCmdRmi(f, nil))
	cmd.AddCommand(aliases.NewCmdAliases(f))
	cmd.AddCommand(newCmdImage(f))
	cmd.AddCommand(commit.NewCmdCommit(f, nil), transfer.NewCmdPush(f, nil), transfer.NewCmdSave(f, nil), transfer.NewCmdLoad(f, nil))
	cmd.AddCommand(version.NewCmdVersion(f, Version, Commit))
	cmd.AddCommand(doctor.NewCmdDoctor(f, nil))
	cmd.AddCommand(newCmdExitCodes())
	cmd.AddCommand(verify.NewCmdVerify(f, nil), df.NewCmdDf(f, nil), newCmdSystem(f))
	cmd.SetHelpCommand(newCmdHelp())
	// Last, once every command is in: shared flag checks and completion.
	cmdutil.ApplyConventions(cmd, f)
	return cmd
}

func newCmdImage(f *cmdutil.Factory) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage images (pull, ls, rm, prune, verify, push, save, load)", Args: cobra.NoArgs}
	ls := images.NewCmdImages(f, nil)
	ls.Use, ls.Aliases = "ls", []string{"list"}
	rm := rmi.NewCmdRmi(f, nil)
	rm.Use, rm.Aliases = "rm IMAGE...", nil
	c.AddCommand(pull.NewCmdPull(f, nil), ls, rm, rmi.NewCmdPrune(f), verify.NewCmdVerify(f, nil))
	c.AddCommand(transfer.NewCmdPush(f, nil), transfer.NewCmdSave(f, nil), transfer.NewCmdLoad(f, nil))
	return c
}

func newCmdSystem(f *cmdutil.Factory) *cobra.Command {
	c := &cobra.Command{Use: "system", Short: "The store as a whole (df)", Args: cobra.NoArgs}
	c.AddCommand(df.NewCmdDf(f, nil))
	return c
}

func newCmdExitCodes() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "How devbox's exit codes are to be read",
		Long: `devbox exits with:
  0     success
  1     devbox doctor: at least one check failed (warnings alone exit 0);
        devbox verify: the store has a problem (after --repair: one is left)
  125   devbox itself failed (bad flags or input, pull, store, namespaces);
        the message on stderr says why, with a hint when you can fix it
  126   the command in the box exists but cannot be executed
  127   the command was not found in the box
  130   interrupted (Ctrl-C) before the command ran
  137   the kernel killed a process of the box for exceeding --memory
        (devbox says so); otherwise 137 is a command killed by SIGKILL
  N     any other code is the exit code of the command run in the box,
        passed through unchanged (128+N when it was killed by signal N)`,
	}
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning", "":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("invalid --log-level %q (hint: use debug, info, warn or error)", s)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Main runs devbox's CLI and returns the process exit code.
func Main() (code int) {
	defer func() {
		if r := recover(); r != nil {
			code = reportPanic(os.Stderr, r, debug.Stack())
		}
	}()
	ios := iostreams.System()
	logger := slog.New(slog.NewTextHandler(ios.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f := factory.New(ios, logger)
	trace.Mark("root: factory")
	cmd := NewCmdRoot(f)
	trace.Mark("root: commands built")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.ExecuteContext(ctx)
	return Report(ios, cmd, err, ctx.Err() != nil)
}

// Report prints err once and returns the exit code for it.
func Report(ios *iostreams.IOStreams, cmd *cobra.Command, err error, interrupted bool) int {
	if err == nil {
		return cmdutil.ExitOK
	}
	var ee *cmdutil.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, cmdutil.ErrHelpShown):
		return cmdutil.ExitOK
	case errors.Is(err, cmdutil.SilentError):
		return cmdutil.ExitFailure
	case interrupted && errors.Is(err, context.Canceled):
		fmt.Fprintln(ios.ErrOut, "devbox: interrupted; nothing half-written was kept")
		return cmdutil.ExitInterrupted
	}
	msg := err.Error()
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) || strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "accepts ") || strings.HasPrefix(msg, "requires at least") {
		if !strings.Contains(msg, "(hint:") {
			msg += " (hint: see devbox " + subcommandPath(cmd) + "--help)"
		}
	}
	fmt.Fprintln(ios.ErrOut, "devbox: "+oneLine(msg))
	return cmdutil.ExitCode(err)
}

func subcommandPath(root *cobra.Command) string {
	c, _, err := root.Find(os.Args[1:])
	if err != nil || c == root {
		return ""
	}
	return strings.TrimPrefix(c.CommandPath(), "devbox ") + " "
}
