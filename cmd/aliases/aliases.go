// Package aliases implements `devbox aliases`.
package aliases

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/spf13/cobra"
)

// NewCmdAliases builds the command.
func NewCmdAliases(f *cmdutil.Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "aliases",
		Short: "List the distro short names (centos, fedora, …) and the images they name",
		Long: "List the distro short names and the images they name. Add or override\n" +
			"aliases in the [aliases] table of the config file (see docs/config.md).",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			tab, err := f.Aliases()
			if err != nil {
				return err
			}
			list := tab.List()
			if asJSON {
				enc := json.NewEncoder(f.IOStreams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ALIAS\tIMAGE\tSOURCE\tDESCRIPTION")
			for _, a := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Ref, a.Source, a.Description)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array (schema in docs/json.md)")
	return cmd
}
