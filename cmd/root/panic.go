package root

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/internal/termsafe"
)

// reportPanic turns a panic of the CLI into one line on stderr and exit
// 125. The stack trace is shown only with DEVBOX_LOG_LEVEL=debug (or
// --log-level debug), for the bug report.
func reportPanic(w io.Writer, r any, stack []byte) int {
	fmt.Fprintf(w, "devbox: internal error: %s (this is a bug: please report it, with the output of --log-level debug)\n", oneLine(fmt.Sprint(r)))
	if strings.EqualFold(os.Getenv("DEVBOX_LOG_LEVEL"), "debug") {
		w.Write(stack)
	}
	return cmdutil.ExitFailure
}

// oneLine folds a message onto one line: every error devbox prints is one
// line, whatever a library put in it.
func oneLine(s string) string { return termsafe.Line(s) }
