package cmdutil

import "testing"

// TestPrintable: terminal escapes from disk or an image never reach the
// terminal.
func TestPrintable(t *testing.T) {
	if got := Printable("linux/amd64/\x1b]0;PWNED\x07\x1b[31mRED\x7f"); got != "linux/amd64/]0;PWNED[31mRED" {
		t.Errorf("Printable = %q", got)
	}
}
