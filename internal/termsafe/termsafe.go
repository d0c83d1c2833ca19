// Package termsafe makes text that devbox did not write (an image's
// config, a record read from disk, a box's answer) safe to print on a
// terminal as part of devbox's own messages: a terminal acts on control
// characters (an OSC sets the window title or writes the clipboard, a CSI
// moves the cursor and hides text), so none may get through.
package termsafe

import "strings"

// IsControl reports whether a terminal may act on r: C0 (newline and tab
// included), DEL and C1 (U+0080-U+009F, which some terminals take as
// 8-bit CSI, OSC, …).
func IsControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// Printable drops the control characters from s.
func Printable(s string) string {
	if !strings.ContainsFunc(s, IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// Line is s as one line of a message: runs of blanks, newlines and tabs
// become one space and other control characters are dropped.
func Line(s string) string {
	if strings.ContainsAny(s, "\n\r\t") {
		s = strings.Join(strings.Fields(s), " ")
	}
	return Printable(s)
}
