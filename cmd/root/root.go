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

// NewCmdRoot builds the whole command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command { return newCmdRoot(f, "") }

// NewCmdRootFor builds the tree that args (os.Args[1:]) need: when the first
// argument names a verb, the root with only that verb's commands, which is
// what cobra would find anyway; otherwise (flags first, help, completion, an
// unknown word) the whole tree. Building every command costs more than a
// millisecond at every start, so `devbox shell NAME` builds one.
func NewCmdRootFor(f *cmdutil.Factory, args []string) *cobra.Command {
	return newCmdRoot(f, VerbOf(args))
}

// VerbOf returns the first name of the verb table entry that args[0] names,
// or "" when the whole tree is needed.
func VerbOf(args []string) string {
	if len(args) == 0 {
		return ""
	}
	for _, v := range verbs {
		for _, n := range v.names {
			if n == args[0] {
				return v.names[0]
			}
		}
	}
	return ""
}

// verb is one entry of the top-level table: the names its commands answer
// to (names[0] the key; the test checks them against the commands) and
// how to build them.
type verb struct {
	names []string
	make  func(f *cmdutil.Factory) []*cobra.Command
}

func one(c func(f *cmdutil.Factory) *cobra.Command) func(f *cmdutil.Factory) []*cobra.Command {
	return func(f *cmdutil.Factory) []*cobra.Command { return []*cobra.Command{c(f)} }
}

// verbs is devbox's top-level command table, in help order.
var verbs = []verb{
	{[]string{"pull"}, one(func(f *cmdutil.Factory) *cobra.Command { return pull.NewCmdPull(f, nil) })},
	{[]string{"run"}, one(func(f *cmdutil.Factory) *cobra.Command { return run.NewCmdRun(f, nil) })},
	{[]string{"shell", "enter"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdShell(f, nil) })},
	{[]string{"create"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdCreate(f, nil) })},
	{[]string{"exec"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdExec(f, nil) })},
	{[]string{"ls", "list", "ps"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdLs(f, nil) })},
	{[]string{"inspect"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdInspect(f, nil) })},
	{[]string{"stop"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdStop(f, nil) })},
	{[]string{"rm"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdRm(f, nil) })},
	{[]string{"prune"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdPrune(f, nil) })},
	{[]string{"ports"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdPorts(f, nil) })},
	{[]string{"snapshot"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdSnapshot(f, nil) })},
	{[]string{"rollback"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdRollback(f, nil) })},
	{[]string{"clone"}, one(func(f *cmdutil.Factory) *cobra.Command { return box.NewCmdClone(f, nil) })},
	{[]string{"assemble"}, one(box.NewCmdAssemble)},
	{[]string{"build"}, one(box.NewCmdBuild)},
	{[]string{"stats"}, one(func(f *cmdutil.Factory) *cobra.Command { return stats.NewCmdStats(f, nil) })},
	{[]string{"update"}, one(func(f *cmdutil.Factory) *cobra.Command { return update.NewCmdUpdate(f, nil) })},
	{[]string{"export"}, one(export.NewCmdExport)},
	{[]string{"unexport"}, one(export.NewCmdUnexport)},
	{[]string{"launch"}, one(box.NewCmdLaunch)},
	{[]string{"images"}, one(func(f *cmdutil.Factory) *cobra.Command { return images.NewCmdImages(f, nil) })},
	{[]string{"rmi"}, one(func(f *cmdutil.Factory) *cobra.Command { return rmi.NewCmdRmi(f, nil) })},
	{[]string{"aliases"}, one(aliases.NewCmdAliases)},
	{[]string{"image"}, one(newCmdImage)},
	{[]string{"commit"}, one(func(f *cmdutil.Factory) *cobra.Command { return commit.NewCmdCommit(f, nil) })},
	{[]string{"push"}, one(func(f *cmdutil.Factory) *cobra.Command { return transfer.NewCmdPush(f, nil) })},
	{[]string{"save"}, one(func(f *cmdutil.Factory) *cobra.Command { return transfer.NewCmdSave(f, nil) })},
	{[]string{"load"}, one(func(f *cmdutil.Factory) *cobra.Command { return transfer.NewCmdLoad(f, nil) })},
	{[]string{"version"}, one(func(f *cmdutil.Factory) *cobra.Command { return version.NewCmdVersion(f, Version, Commit) })},
	{[]string{"doctor"}, one(func(f *cmdutil.Factory) *cobra.Command { return doctor.NewCmdDoctor(f, nil) })},
	{[]string{"exit-codes"}, func(*cmdutil.Factory) []*cobra.Command { return []*cobra.Command{newCmdExitCodes()} }},
	{[]string{"verify"}, one(func(f *cmdutil.Factory) *cobra.Command { return verify.NewCmdVerify(f, nil) })},
	{[]string{"df"}, one(func(f *cmdutil.Factory) *cobra.Command { return df.NewCmdDf(f, nil) })},
	{[]string{"system"}, one(newCmdSystem)},
}

func newCmdRoot(f *cmdutil.Factory, only string) *cobra.Command {
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

	for _, v := range verbs {
		if only == "" || v.names[0] == only {
			cmd.AddCommand(v.make(f)...)
		}
	}
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
        devbox verify: the store has a problem (after --repair: one is left);
        devbox build: a package install or on_create hook failed (named, with its log)
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
	cmd := NewCmdRootFor(f, os.Args[1:])
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
	if cmdutil.IsUsage(err) || strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "accepts ") || strings.HasPrefix(msg, "requires at least") {
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
