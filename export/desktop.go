package export

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Entry is what devbox takes from a box's desktop file: only the keys it
// rewrites, each validated. The exported file is written from these
// values; nothing else of the box's file reaches the host.
type Entry struct {
	Name, GenericName, Comment string   // raw (escaped) string values
	Exec                       []string // argv, field codes as separate arguments
	Icon                       string
	Terminal, StartupNotify    bool
	Categories, MimeTypes      []string
	StartupWMClass             string
}

// keys kept from the box's file, unlocalised only.
var desktopKeys = map[string]bool{
	"Type": true, "Name": true, "GenericName": true, "Comment": true, "Exec": true, "Icon": true,
	"Terminal": true, "Categories": true, "MimeType": true, "StartupNotify": true,
	"StartupWMClass": true, "NoDisplay": true, "Hidden": true,
}

// ParseDesktop reads the [Desktop Entry] group of a desktop file.
func ParseDesktop(b []byte) (*Entry, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("the desktop file is not UTF-8")
	}
	kv := map[string]string{}
	group := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			group = t
			continue
		}
		if group != "[Desktop Entry]" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimLeft(v, " \t")
		if !desktopKeys[k] {
			continue
		}
		if _, dup := kv[k]; !dup {
			kv[k] = v
		}
	}
	if t := kv["Type"]; t != "Application" {
		return nil, fmt.Errorf("the desktop file is of type %q, not an Application", t)
	}
	e := &Entry{}
	var err error
	if e.Name, err = plainString(kv["Name"]); err != nil || e.Name == "" {
		return nil, fmt.Errorf("the desktop file has no usable Name")
	}
	e.GenericName, _ = plainString(kv["GenericName"])
	e.Comment, _ = plainString(kv["Comment"])
	if kv["Exec"] == "" {
		return nil, errors.New("the desktop file has no Exec")
	}
	if e.Exec, err = ParseExec(kv["Exec"]); err != nil {
		return nil, fmt.Errorf("the desktop file's Exec: %w", err)
	}
	e.Icon = strings.TrimSpace(kv["Icon"])
	e.Terminal = kv["Terminal"] == "true"
	e.StartupNotify = kv["StartupNotify"] == "true"
	e.Categories = categories(kv["Categories"])
	e.MimeTypes = mimeTypes(kv["MimeType"])
	if c := kv["StartupWMClass"]; validToken(c, "._-") {
		e.StartupWMClass = c
	}
	return e, nil
}

// plainString accepts a string value as it is written in the file: valid
// escapes only and no control characters; it is written back unchanged.
func plainString(v string) (string, error) {
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c == 0x7f {
			return "", errors.New("control character")
		}
		if c == '\\' {
			if i+1 >= len(v) || !strings.ContainsRune(`sntr\;`, rune(v[i+1])) {
				return "", errors.New("bad escape")
			}
			i++
		}
	}
	return v, nil
}

func validToken(s, extra string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

// mainCategories are the registered main categories of the Desktop Menu
// Specification; other categories need a related main one, so only these
// are kept (Audio and Video need AudioVideo).
var mainCategories = map[string]bool{
	"AudioVideo": true, "Audio": true, "Video": true, "Development": true, "Education": true,
	"Game": true, "Graphics": true, "Network": true, "Office": true, "Science": true,
	"Settings": true, "System": true, "Utility": true,
}

func categories(v string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range strings.Split(v, ";") {
		c = strings.TrimSpace(c)
		if mainCategories[c] && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if (seen["Audio"] || seen["Video"]) && !seen["AudioVideo"] {
		out = append(out, "AudioVideo")
	}
	sort.Strings(out)
	return out
}

var mediaTops = map[string]bool{"application": true, "audio": true, "font": true, "image": true,
	"inode": true, "message": true, "model": true, "multipart": true, "text": true, "video": true,
	"x-scheme-handler": true, "x-content": true}

func mimeTypes(v string) []string {
	var out []string
	for _, m := range strings.Split(v, ";") {
		top, sub, ok := strings.Cut(strings.TrimSpace(m), "/")
		if ok && mediaTops[top] && validToken(sub, ".+-_") {
			out = append(out, top+"/"+sub)
		}
	}
	return out
}

// fieldCodes are the Exec field codes an exported entry keeps; %i, %c, %k
// (and the deprecated ones) are dropped: the icon and name are devbox's.
var fieldCodes = map[string]bool{"%f": true, "%F": true, "%u": true, "%U": true}

var droppedCodes = map[string]bool{"%i": true, "%c": true, "%k": true, "%d": true, "%D": true,
	"%n": true, "%N": true, "%v": true, "%m": true}

// ParseExec splits a desktop file's Exec value into arguments, following
// the Desktop Entry Specification: first the string escapes (\s, \\, …),
// then the quoting rules (double quotes, inside which \" \` \$ \\ are
// escapes). A field code must be an argument of its own; %% is a percent
// sign.
func ParseExec(v string) ([]string, error) {
	var un strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return nil, errors.New("control character")
		}
		if c != '\\' {
			un.WriteByte(c)
			continue
		}
		if i+1 >= len(v) {
			return nil, errors.New("trailing backslash")
		}
		i++
		switch v[i] {
		case 's':
			un.WriteByte(' ')
		case '\\':
			un.WriteByte('\\')
		case ';':
			un.WriteByte(';')
		default:
			// \" \` \$ are quoting escapes: keep them for the next pass.
			un.WriteByte('\\')
			un.WriteByte(v[i])
		}
	}
	s := un.String()
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			switch c {
			case '"':
				quoted = false
			case '\\':
				if i+1 < len(s) && strings.IndexByte("\"`$\\", s[i+1]) >= 0 {
					i++
					cur.WriteByte(s[i])
				} else {
					return nil, errors.New("bad escape in a quoted argument")
				}
			default:
				cur.WriteByte(c)
			}
		case c == ' ' || c == '\t':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '"':
			quoted, inArg = true, true
		default:
			if strings.IndexByte("`$\\'<>~|&;*?#()", c) >= 0 {
				return nil, fmt.Errorf("reserved character %q outside quotes", c)
			}
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inArg {
		args = append(args, cur.String())
	}
	var out []string
	for _, a := range args {
		if fieldCodes[a] {
			out = append(out, a)
			continue
		}
		if droppedCodes[a] {
			continue
		}
		lit := strings.ReplaceAll(a, "%%", "\x00")
		if strings.Contains(lit, "%") {
			return nil, fmt.Errorf("field code inside the argument %q", a)
		}
		out = append(out, strings.ReplaceAll(lit, "\x00", "%"))
	}
	if len(out) == 0 || fieldCodes[out[0]] {
		return nil, errors.New("no program")
	}
	return out, nil
}

// execReserved are the characters that make an Exec argument need quotes.
const execReserved = " \t\n\"'\\><~|&;$*?#()`"

// QuoteExec writes argv as an Exec value: each argument quoted when
// needed, percent signs doubled, then the string escapes applied (a
// backslash becomes two). Field codes in codes are written bare.
func QuoteExec(argv []string) (string, error) {
	var parts []string
	for _, a := range argv {
		for _, r := range a {
			if r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("control character in the argument %q", a)
			}
		}
		if fieldCodes[a] {
			parts = append(parts, a)
			continue
		}
		q := strings.ReplaceAll(a, "%", "%%")
		if q == "" || strings.ContainsAny(q, execReserved) {
			var b strings.Builder
			b.WriteByte('"')
			for i := 0; i < len(q); i++ {
				if strings.IndexByte("\"`$\\", q[i]) >= 0 {
					b.WriteByte('\\')
				}
				b.WriteByte(q[i])
			}
			b.WriteByte('"')
			q = b.String()
		}
		parts = append(parts, q)
	}
	return strings.ReplaceAll(strings.Join(parts, " "), `\`, `\\`), nil
}

// Desktop renders the exported desktop file of e for box (name boxName,
// id boxID): Exec runs the program through devbox (the command line
// devbox, with its --store) in the box, the
// name carries the box's, and icon (a host path, may be empty) replaces
// the box's icon.
func Desktop(e *Entry, devbox []string, boxName, boxID, icon string) (string, error) {
	argv := append(append(append([]string{}, devbox...), "exec"), execFlags(e)...)
	argv = append(argv, boxName, "--")
	argv = append(argv, e.Exec...)
	ex, err := QuoteExec(argv)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("[Desktop Entry]\n")
	b.WriteString("Type=Application\n")
	fmt.Fprintf(&b, "Name=%s (%s)\n", e.Name, boxName)
	if e.GenericName != "" {
		fmt.Fprintf(&b, "GenericName=%s\n", e.GenericName)
	}
	if e.Comment != "" {
		fmt.Fprintf(&b, "Comment=%s\n", e.Comment)
	}
	fmt.Fprintf(&b, "Exec=%s\n", ex)
	if icon != "" {
		if _, err := plainString(icon); err != nil || strings.Contains(icon, `\`) {
			return "", fmt.Errorf("unusable icon path %q", icon)
		}
		fmt.Fprintf(&b, "Icon=%s\n", icon)
	}
	fmt.Fprintf(&b, "Terminal=%t\n", e.Terminal)
	if e.StartupNotify {
		b.WriteString("StartupNotify=true\n")
	}
	if len(e.Categories) > 0 {
		fmt.Fprintf(&b, "Categories=%s;\n", strings.Join(e.Categories, ";"))
	}
	if len(e.MimeTypes) > 0 {
		fmt.Fprintf(&b, "MimeType=%s;\n", strings.Join(e.MimeTypes, ";"))
	}
	if e.StartupWMClass != "" {
		fmt.Fprintf(&b, "StartupWMClass=%s\n", e.StartupWMClass)
	}
	fmt.Fprintf(&b, "%s=%s\n", markKey, boxID)
	return b.String(), nil
}

// execFlags are devbox exec's flags for the entry: a terminal for an
// application that runs in one.
func execFlags(e *Entry) []string {
	if e.Terminal {
		return []string{"-t"}
	}
	return nil
}

// markKey marks an exported desktop file with its box's id.
const markKey = "X-Devbox-Box"
