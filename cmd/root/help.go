package root

import (
	"fmt"
	"strings"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/spf13/cobra"
)

// newCmdHelp replaces cobra's help command: an unknown topic is an error
// (one line on stderr, exit 125) instead of a usage text on stdout with
// exit 0, and help topics such as exit-codes complete like commands.
func newCmdHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND|TOPIC]",
		Short: "Help about any command, or a topic (devbox help exit-codes)",
		Long: "Help for any command (devbox help image prune) or topic. Topics:\n" +
			"  exit-codes   how devbox's exit codes are to be read",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			parent, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range parent.Commands() {
				if (sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand()) && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || target == nil || (len(rest) > 0 && target.HasSubCommands()) {
				return unknownTopic(c.Root(), args)
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}

func unknownTopic(root *cobra.Command, args []string) error {
	topic := strings.Join(args, " ")
	hint := "devbox help lists the commands and topics"
	parent, _, _ := root.Find(args[:len(args)-1])
	if parent == nil {
		parent = root
	}
	typed := strings.ToLower(args[len(args)-1])
	best, bestD := "", 3
	for _, sub := range parent.Commands() {
		if !sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
			continue
		}
		d := editDistance(typed, sub.Name())
		if strings.HasPrefix(sub.Name(), typed) {
			d = 0
		}
		if d < bestD {
			best, bestD = sub.Name(), d
		}
	}
	if best != "" {
		hint = fmt.Sprintf("did you mean %q? %s", best, hint)
	}
	return cmdutil.FlagErrorf("unknown help topic %q (hint: %s)", topic, hint)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
