package box

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// sessionFlags are shell's flags that apply to every session; the others
// are create's and only shape a new box.
var sessionFlags = map[string]bool{"devcontainer": true, "trust": true, "reprovision": true, "root": true, "tty": true, "no-tty": true, "help": true, "store": true, "log-level": true, "platform": true}

// changedCreateFlags returns the create flags given on c's command line,
// and each as it would be written again (for the hint).
func changedCreateFlags(c *cobra.Command) (names []string, args map[string][]string) {
	args = map[string][]string{}
	c.Flags().Visit(func(fl *pflag.Flag) {
		if sessionFlags[fl.Name] {
			return
		}
		names = append(names, fl.Name)
		switch v := fl.Value.(type) {
		case pflag.SliceValue:
			for _, s := range v.GetSlice() {
				args[fl.Name] = append(args[fl.Name], "--"+fl.Name+" "+shellQuote(s))
			}
		default:
			if fl.Value.Type() == "bool" {
				args[fl.Name] = []string{"--" + fl.Name + "=" + fl.Value.String()}
			} else {
				args[fl.Name] = []string{"--" + fl.Name + " " + shellQuote(fl.Value.String())}
			}
		}
	})
	return names, args
}

// shellQuote quotes s for a hint when a shell would split or expand it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"$`\\*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
