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

// TestVisible: what a trust prompt shows is exact: plain text as it is,
// anything with a control, a bidirectional control, another format
// character or invalid UTF-8 quoted with that rune escaped.
func TestVisible(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"npm install && make", "npm install && make"},
		{"échelle 日本 \u00a0", "échelle 日本 \u00a0"},
		{`say "hi" \n`, `say "hi" \n`},
		{"echo setup # \nid > f", `"echo setup # \nid > f"`},
		{"a\rb\tc\x1b[8m\x7f\u009b", `"a\rb\tc\x1b[8m\x7f\u009b"`},
		{"x\u202ey\u2066z\u2069\u200e\u200f\u061c\u202a", `"x\u202ey\u2066z\u2069\u200e\u200f\u061c\u202a"`},
		{"zero\u200bwidth", `"zero\u200bwidth"`},
		{"line\u2028sep", `"line\u2028sep"`},
		{"bad\xffutf8", `"bad\xffutf8"`},
	} {
		if got := Visible(c.in); got != c.want {
			t.Errorf("Visible(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}
