package root

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/factory"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/spf13/cobra"
)

func newTree() (*cobra.Command, *iostreams.IOStreams, *bytes.Buffer, *bytes.Buffer) {
	ios, _, out, errOut := iostreams.Test()
	return NewCmdRoot(factory.New(ios, slog.New(slog.NewTextHandler(io.Discard, nil)))), ios, out, errOut
}

// execute runs argv on a fresh tree the way Main does.
func execute(args ...string) (code int, stdout, stderr string) {
	cmd, ios, out, errOut := newTree()
	cmd.SetArgs(args)
	err := cmd.Execute()
	code = Report(ios, cmd, err, false)
	return code, out.String(), errOut.String()
}

func TestHelpTopics(t *testing.T) {
	code, out, errOut := execute("help", "exit-codes")
	if code != 0 || !strings.Contains(out, "125") || errOut != "" {
		t.Errorf("help exit-codes: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = execute("help", "image", "prune")
	if code != 0 || !strings.Contains(out, "devbox image prune") {
		t.Errorf("help image prune: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "exit-cod"}, `did you mean "exit-codes"?`},
		{[]string{"help", "nosuchthing"}, "devbox help lists the commands and topics"},
		{[]string{"help", "image", "prnue"}, `did you mean "prune"?`},
	} {
		code, out, errOut := execute(c.args...)
		if code != cmdutil.ExitFailure || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want 125, nothing on stdout, one line with %q", c.args, code, out, errOut, c.want)
		}
	}
}

func TestHelpCompletesTopics(t *testing.T) {
	cmd, _, out, _ := newTree()
	cmd.SetArgs([]string{cobra.ShellCompRequestCmd, "help", "exit"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "exit-codes\t") {
		t.Errorf("devbox help exit<TAB>: %q", out)
	}
}

// The exit codes in `devbox help exit-codes` and docs/exit-codes.md agree.
func TestExitCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/exit-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	_, help, _ := execute("help", "exit-codes")
	docCodes := regexp.MustCompile(`(?m)^\| (\d+) \|`).FindAllStringSubmatch(string(doc), -1)
	helpCodes := regexp.MustCompile(`(?m)^  (\d+) `).FindAllStringSubmatch(help, -1)
	var d, h []string
	for _, m := range docCodes {
		d = append(d, m[1])
	}
	for _, m := range helpCodes {
		h = append(h, m[1])
	}
	if len(d) == 0 || !slices.Equal(d, h) {
		t.Errorf("docs/exit-codes.md lists %v, devbox help exit-codes lists %v", d, h)
	}
	for _, c := range []int{cmdutil.ExitOK, cmdutil.ExitChecksFailed, cmdutil.ExitFailure, cmdutil.ExitNotRunnable, cmdutil.ExitNotFound, cmdutil.ExitInterrupted, cmdutil.ExitOOM} {
		if !slices.Contains(d, fmt.Sprint(c)) {
			t.Errorf("exit code %d is not documented", c)
		}
	}
}

func TestReportOneLine(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	code := Report(ios, &cobra.Command{Use: "devbox"}, errors.New("first\nsecond\tthird (hint: x)"), false)
	if code != cmdutil.ExitFailure || errOut.String() != "devbox: first second third (hint: x)\n" {
		t.Errorf("code %d, stderr %q", code, errOut)
	}
}

func TestReportPanic(t *testing.T) {
	t.Setenv("DEVBOX_LOG_LEVEL", "warn")
	var buf bytes.Buffer
	code := reportPanic(&buf, "runtime error: index out of range [3]\nwith length 2", []byte("goroutine 1 [running]:\n"))
	if code != cmdutil.ExitFailure {
		t.Errorf("code %d", code)
	}
	if s := buf.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "this is a bug: please report it") || strings.Contains(s, "goroutine") {
		t.Errorf("panic report %q", s)
	}
	t.Setenv("DEVBOX_LOG_LEVEL", "debug")
	buf.Reset()
	reportPanic(&buf, "boom", []byte("goroutine 1 [running]:\n"))
	if !strings.Contains(buf.String(), "goroutine 1") {
		t.Errorf("debug level hides the stack: %q", buf.String())
	}
}

// Every command whose usage names positional arguments completes them, and
// the listing commands have --json: later commands inherit both rules.
func TestCommandConventions(t *testing.T) {
	cmd, _, _, _ := newTree()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || c.Hidden || c.Name() == "help" || c.Name() == cobra.ShellCompRequestCmd || c.HasParent() && c.Parent().Name() == "completion" {
			return
		}
		if kinds, _ := cmdutil.ArgKinds(c.Use); len(kinds) > 0 && c.ValidArgsFunction == nil {
			t.Errorf("%s: usage %q names arguments but nothing completes them (hint: use IMAGE, ALIAS, NAME or BOX in Use, or set ValidArgsFunction from cmd/cmdutil/complete.go)", c.CommandPath(), c.Use)
		}
	}
	walk(cmd)
	for _, path := range [][]string{{"images"}, {"image", "ls"}, {"aliases"}, {"doctor"}, {"version"}} {
		c, _, err := cmd.Find(path)
		if err != nil || c.Flags().Lookup("json") == nil {
			t.Errorf("devbox %s has no --json", strings.Join(path, " "))
		}
	}
}

// TestVerbTable keeps the lazily built tree true: each table entry's names
// are exactly what its commands answer to, every top-level command is in
// the table, and a tree built for one verb finds the same command (flags
// and all) as the whole tree.
func TestVerbTable(t *testing.T) {
	full, _, _, _ := newTree()
	seen := map[string]bool{}
	for _, v := range verbs {
		ios, _, _, _ := iostreams.Test()
		f := factory.New(ios, slog.New(slog.NewTextHandler(io.Discard, nil)))
		cmds := v.make(f)
		var names []string
		for _, c := range cmds {
			names = append(names, c.Name())
			names = append(names, c.Aliases...)
		}
		if !slices.Equal(names, v.names) {
			t.Errorf("verb table entry %v: the commands answer to %v", v.names, names)
		}
		for _, n := range v.names {
			if seen[n] {
				t.Errorf("name %q twice in the verb table", n)
			}
			seen[n] = true
			if VerbOf([]string{n, "x"}) != v.names[0] {
				t.Errorf("VerbOf(%q) = %q, want %q", n, VerbOf([]string{n}), v.names[0])
			}
			lazy := newCmdRoot(f, v.names[0])
			a, _, errA := lazy.Find([]string{n})
			b, _, errB := full.Find([]string{n})
			if errA != nil || errB != nil || a.CommandPath() != b.CommandPath() || a.UseLine() != b.UseLine() || a.Flags().FlagUsages() != b.Flags().FlagUsages() {
				t.Errorf("devbox %s: the one-verb tree differs from the whole tree (%v, %v)", n, errA, errB)
			}
		}
	}
	for _, c := range full.Commands() {
		if c.Name() != "help" && c.Name() != "completion" && !seen[c.Name()] {
			t.Errorf("devbox %s is not in the verb table (cmd/root/root.go verbs)", c.Name())
		}
	}
	for _, args := range [][]string{nil, {}, {"--store", "x", "shell"}, {"help", "shell"}, {"__complete", "shell", ""}, {"completion", "bash"}, {"nosuchverb"}} {
		if v := VerbOf(args); v != "" {
			t.Errorf("VerbOf(%q) = %q, want the whole tree", args, v)
		}
	}
}
