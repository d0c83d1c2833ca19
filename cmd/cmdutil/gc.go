package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/devbox-dev/devbox/image/store"
)

// HumanBytes formats n bytes as 12.3 MiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// PrintGarbage writes a dry run's list: a table (KIND NAME SIZE) or, with
// asJSON, the items as a JSON array (docs/json.md).
func PrintGarbage(out io.Writer, items []store.Garbage, asJSON bool) error {
	if asJSON {
		if items == nil {
			items = []store.Garbage{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSIZE")
	for _, g := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Kind, g.Name, HumanBytes(g.Size))
	}
	return tw.Flush()
}

// GCSummary is the one line a collection prints on stderr.
func GCSummary(rep store.GCReport, dryRun bool) string {
	verb := "Deleted"
	if dryRun {
		verb = "Would delete"
	}
	return fmt.Sprintf("%s %d blob(s), %d unpacked layer(s), %d leftover(s): %s", verb,
		rep.Count(store.KindBlob), rep.Count(store.KindLayer), rep.Count(store.KindTmp), HumanBytes(rep.Bytes))
}
