package cmdutil

import (
	"strings"

	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/internal/termsafe"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ApplyConventions walks the command tree once, after it is built, so that
// the same flag or placeholder behaves the same in every command:
//
//   - --platform is checked when it is parsed (one clear line for a
//     malformed value, whichever command has it) and completes common
//     platforms; --pull is checked and completes its three values;
//   - --net/--network, --env, --image, --log-level and --store (a string)
//     complete, unless the command registered its own completion;
//   - a command without ValidArgsFunction or ValidArgs completes its
//     positional arguments from the first placeholder of its Use line:
//     IMAGE (aliases and stored images), ALIAS, NAME or BOX (box names);
//     alternatives such as NAME|ALIAS are combined, and a trailing "..."
//     completes every argument, not only the first.
func ApplyConventions(root *cobra.Command, f *Factory) {
	walk(root, func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) { flagConvention(c, fl, f) })
		if c.ValidArgsFunction == nil && len(c.ValidArgs) == 0 && c.Runnable() {
			if fn := ArgCompletion(c.Use, f); fn != nil {
				c.ValidArgsFunction = fn
			}
		}
	})
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

func flagConvention(c *cobra.Command, fl *pflag.Flag, f *Factory) {
	str := fl.Value.Type() == "string"
	var comp cobra.CompletionFunc
	switch {
	case fl.Name == "platform" && str:
		fl.Value = checkedValue{fl.Value, func(s string) error {
			if s == "" {
				return nil
			}
			_, err := image.ParsePlatform(s)
			return err
		}}
		comp = Fixed(Platforms)
	case fl.Name == "pull" && str:
		fl.Value = checkedValue{fl.Value, ValidPull}
		comp = Fixed(PullPolicies)
	case (fl.Name == "net" || fl.Name == "network") && str:
		comp = Fixed(NetworkModes)
	case fl.Name == "log-level" && str:
		comp = Fixed(LogLevels)
	case fl.Name == "image" && str:
		comp = CompleteImages(f)
	case fl.Name == "store" && str:
		comp = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		}
	case fl.Name == "env" && (str || fl.Value.Type() == "stringArray"):
		comp = CompleteEnv
	}
	if comp == nil {
		return
	}
	if _, ok := c.GetFlagCompletionFunc(fl.Name); ok {
		return
	}
	_ = c.RegisterFlagCompletionFunc(fl.Name, comp)
}

// checkedValue validates a flag's value when it is parsed, so that a bad
// value fails the same way in every command, before anything runs.
type checkedValue struct {
	pflag.Value
	check func(string) error
}

func (v checkedValue) Set(s string) error {
	if err := v.check(s); err != nil {
		return err
	}
	return v.Value.Set(s)
}

// ArgCompletion returns the completion for the positional arguments named in
// a Use line, or nil when its first placeholder is not one devbox knows.
func ArgCompletion(use string, f *Factory) cobra.CompletionFunc {
	kinds, repeat := ArgKinds(use)
	var fns []cobra.CompletionFunc
	for _, k := range kinds {
		switch k {
		case "IMAGE":
			fns = append(fns, CompleteImages(f))
		case "ALIAS":
			fns = append(fns, CompleteAliases(f))
		case "NAME", "BOX":
			fns = append(fns, CompleteBoxes(f))
		}
	}
	if len(fns) == 0 {
		return nil
	}
	fn := fns[0]
	if len(fns) > 1 {
		fn = Union(fns...)
	}
	if repeat {
		return fn
	}
	return FirstArg(fn)
}

// ArgKinds parses the first positional placeholder of a cobra Use line:
// "rmi IMAGE..." → [IMAGE], true; "shell NAME|ALIAS [--] [COMMAND]" →
// [NAME ALIAS], false. Optional brackets and "[flags]" are skipped; lower
// case words (fixed values such as bash|zsh) are not placeholders.
func ArgKinds(use string) (kinds []string, repeat bool) {
	fields := strings.Fields(use)
	if len(fields) < 2 {
		return nil, false
	}
	for _, tok := range fields[1:] {
		t := strings.Trim(tok, "[]")
		if t == "" || t == "flags" || t == "options" || strings.HasPrefix(t, "-") {
			continue
		}
		t, repeat = strings.CutSuffix(t, "...")
		for alt := range strings.SplitSeq(t, "|") {
			if alt == "" || strings.ToUpper(alt) != alt || strings.Trim(alt, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != "" {
				return nil, false
			}
			kinds = append(kinds, alt)
		}
		return kinds, repeat
	}
	return nil, false
}

// Printable drops control characters (terminal escapes, C1 included) from
// a value read from disk or from an image before it is printed.
func Printable(s string) string { return termsafe.Printable(s) }

// Visible shows a value the user decides on (a trust prompt) exactly:
// as it is, or quoted with every non-graphic rune escaped
// (termsafe.Visible).
func Visible(s string) string { return termsafe.Visible(s) }
