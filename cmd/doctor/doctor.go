// Package doctor implements `devbox doctor`.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/doctor"
	"github.com/spf13/cobra"
)

// ExitChecksFailed is doctor's exit code when a check failed.
const ExitChecksFailed = cmdutil.ExitChecksFailed

// Options are the parsed flags.
type Options struct {
	JSON bool
}

// NewCmdDoctor builds the command; runF replaces the run function in tests.
func NewCmdDoctor(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this machine can run rootless boxes, and say how to fix what is missing",
		Long: "Check, in order, everything devbox needs from the host: user namespaces (and\n" +
			"AppArmor's restriction of them), newuidmap/newgidmap, your subordinate ids,\n" +
			"XDG_RUNTIME_DIR, overlayfs in a user namespace (tried for real), fuse-overlayfs,\n" +
			"the filesystems of the store and your home, cgroup v2 delegation, the user\n" +
			"D-Bus, network helpers, the configuration and the store. Each check prints\n" +
			"one pass, warn or fail line; warnings and failures are followed by the fix.\n\n" +
			"Exit status: 0 when no check failed (warnings allowed), 1 when one failed.",
		Example: "  devbox doctor\n  devbox doctor --json | jq -r '.[] | select(.status != \"pass\") | .check'",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array of {check, status, message, hint} (docs/json.md)")
	return cmd
}

// Run runs the checks and prints them.
func Run(f *cmdutil.Factory, opts *Options) error {
	env := cmdutil.HostEnv(f)
	env.Probe = doctor.NewProber(env.Mapping)
	results := doctor.Run(env)
	if opts.JSON {
		enc := json.NewEncoder(f.IOStreams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		Print(f.IOStreams.Out, results)
		summary(f.IOStreams.ErrOut, results)
	}
	if doctor.Failed(results) {
		return &cmdutil.ExitError{Code: ExitChecksFailed}
	}
	return nil
}

// Print writes one line per result, each warning and failure followed by
// its fix, indented.
func Print(w io.Writer, results []doctor.Result) {
	width := 0
	for _, r := range results {
		width = max(width, len(r.Check))
	}
	indent := strings.Repeat(" ", 6+width+2)
	for _, r := range results {
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", r.Status, width, r.Check, r.Message)
		if r.Hint == "" || r.Status == doctor.Pass {
			continue
		}
		for i, line := range strings.Split(r.Hint, "\n") {
			prefix := indent + "fix: "
			if i > 0 {
				prefix = indent + "     "
			}
			fmt.Fprintln(w, prefix+line)
		}
	}
}

func summary(w io.Writer, results []doctor.Result) {
	n := map[doctor.Status]int{}
	for _, r := range results {
		n[r.Status]++
	}
	fmt.Fprintf(w, "%d passed, %d warning(s), %d failed\n", n[doctor.Pass], n[doctor.Warn], n[doctor.Fail])
}
