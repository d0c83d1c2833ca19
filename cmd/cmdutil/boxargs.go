package cmdutil

import (
	"errors"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ErrHelpShown says a box command printed its help from a --help that came
// after the box name; the command ends there, successfully.
var ErrHelpShown = errors.New("help shown")

// ParseAfterName parses what follows NAME on a box command line (devbox
// shell NAME …, devbox exec NAME …): the flags up to the first word that is
// not a flag, or up to "--", are devbox's; the rest is the command and its
// arguments, untouched. So "devbox shell dev --root" enters as root,
// "devbox exec dev -t -- htop" gets a terminal and "devbox exec dev ls -l"
// runs ls -l. The command's flag set must not be interspersed (cobra stops
// at NAME). A --help among devbox's flags prints the help (ErrHelpShown).
func ParseAfterName(c *cobra.Command, rest []string) ([]string, error) {
	fs := c.Flags()
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, helpShown(c)
		}
		return nil, &FlagError{Err: err}
	}
	if h := fs.Lookup("help"); h != nil && h.Value.String() == "true" {
		return nil, helpShown(c)
	}
	return fs.Args(), nil
}

func helpShown(c *cobra.Command) error {
	if err := c.Help(); err != nil {
		return err
	}
	return ErrHelpShown
}
