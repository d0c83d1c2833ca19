// Package termsafe makes text that devbox did not write (an image's
// config, a record read from disk, a box's answer) safe to print on a
// terminal as part of devbox's own messages: a terminal acts on control
// characters (an OSC sets the window title or writes the clipboard, a CSI
// moves the cursor and hides text), so none may get through.
package termsafe

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

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

// Visible is s as shown where the user decides on it (a trust prompt):
// s itself when it is valid UTF-8 of graphic runes only (letters, marks,
// numbers, punctuation, symbols, spaces), else s quoted Go-style with
// every other rune escaped. Printable's dropping is not enough there: a
// dropped newline joins a hook's hidden second line to a comment on its
// first ("echo setup # \nid" shown as "echo setup # id"), and the
// bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F,
// U+061C: format characters, not graphic) make a terminal that
// implements bidi show text in another order than it runs.
func Visible(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsGraphic(r) }) {
		return s
	}
	return strconv.QuoteToGraphic(s)
}
