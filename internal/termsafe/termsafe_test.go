package termsafe

import "testing"

// TestPrintable: the escapes a hostile image or record could carry never
// reach a terminal, C1 controls (8-bit CSI) included; other text stays.
func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want, line string }{
		{"plain/text:1 é 日本", "plain/text:1 é 日本", "plain/text:1 é 日本"},
		{"/w\x1b]0;PWNED\x07dir\x1b[31m", "/w]0;PWNEDdir[31m", "/w]0;PWNEDdir[31m"},
		{"a\u009b2Jb\u0085c\x7f", "a2Jbc", "a2Jbc"},
		{"two\nlines\tand\r tabs", "twolinesand tabs", "two lines and tabs"},
		{"nul\x00byte", "nulbyte", "nulbyte"},
		{"\u00a0nbsp stays", "\u00a0nbsp stays", "\u00a0nbsp stays"},
	} {
		if got := Printable(c.in); got != c.want {
			t.Errorf("Printable(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := Line(c.in); got != c.line {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.line)
		}
	}
}
