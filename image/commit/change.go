package commit

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/devbox-dev/devbox/internal/termsafe"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Changes are the Dockerfile instructions devbox commit --change takes
// (`devbox commit --help`).
var Changes = []string{"CMD", "ENTRYPOINT", "ENV", "LABEL", "USER", "WORKDIR"}

// Change is one parsed --change instruction.
type Change struct {
	Op string // one of Changes
	// Args is the command of CMD and ENTRYPOINT (the shell form as
	// /bin/sh -c LINE); the user of USER; the directory of WORKDIR.
	Args []string
	// Pairs are the KEY=VALUE of ENV and LABEL, in order.
	Pairs [][2]string
}

// ParseChange parses one Dockerfile-style instruction: CMD and
// ENTRYPOINT in exec form (a JSON array of strings) or shell form; ENV and
// LABEL as KEY=VALUE words (quotes and backslashes as a shell reads them;
// ENV KEY VALUE too); USER user[:group]; WORKDIR DIR.
func ParseChange(s string) (Change, error) {
	if strings.ContainsRune(s, 0) {
		return Change{}, errors.New("invalid --change: it has a NUL byte")
	}
	word, rest := cutWord(strings.TrimSpace(s))
	op := strings.ToUpper(word)
	c := Change{Op: op}
	bad := func(format string, a ...any) (Change, error) {
		return Change{}, fmt.Errorf("invalid --change %q: %s", s, fmt.Sprintf(format, a...))
	}
	switch op {
	case "CMD", "ENTRYPOINT":
		if strings.HasPrefix(rest, "[") {
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil {
				return bad(`the exec form is a JSON array of strings (hint: %s ["prog", "arg"], or %s prog arg for /bin/sh -c)`, op, op)
			}
			c.Args = args
		} else if rest != "" {
			c.Args = []string{"/bin/sh", "-c", rest}
		} else {
			return bad("no command (hint: %s [] sets none)", op)
		}
	case "ENV", "LABEL":
		words, err := splitWords(rest)
		if err != nil {
			return bad("%v", err)
		}
		if len(words) == 0 {
			return bad("no KEY=VALUE (hint: %s KEY=VALUE [KEY=VALUE…])", op)
		}
		if op == "ENV" && !strings.Contains(words[0], "=") {
			// The old form, ENV KEY VALUE: the value is the rest.
			if len(words) == 1 {
				return bad("%q has no value (hint: ENV %s=VALUE)", words[0], words[0])
			}
			_, v := cutWord(rest)
			vw, err := splitWords(v)
			if err != nil {
				return bad("%v", err)
			}
			words = []string{words[0] + "=" + strings.Join(vw, " ")}
		}
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			if !ok || k == "" {
				return bad("%q is not KEY=VALUE", w)
			}
			if op == "ENV" && strings.ContainsAny(k, " \t\n") {
				return bad("%q is not a variable name", k)
			}
			c.Pairs = append(c.Pairs, [2]string{k, v})
		}
	case "USER":
		if rest == "" || strings.ContainsAny(rest, " \t\n") {
			return bad("want one user[:group] (hint: USER 1000, USER dev:dev)")
		}
		c.Args = []string{rest}
	case "WORKDIR":
		words, err := splitWords(rest)
		if err != nil {
			return bad("%v", err)
		}
		if len(words) != 1 {
			return bad("want one directory (hint: WORKDIR /src)")
		}
		c.Args = words
	default:
		return bad("devbox commit supports %s (hint: e.g. --change 'CMD [\"make\", \"test\"]')", strings.Join(Changes, ", "))
	}
	if msg := c.badText(); msg != "" {
		return bad("%s", msg)
	}
	return c, nil
}

// badText says what is wrong with the text of c, or "". The exec form is
// JSON, whose escapes (\u0000, \u001b) put into the image's config what
// the line itself does not show: a NUL (which every consumer of a command,
// an environment or a path reads as the end of the string, so the image
// would mean one thing to one tool and another to the next) and terminal
// escapes are refused, and text must be UTF-8 (the config is JSON). Tabs
// and newlines are allowed in a command and a value (a script may have
// them), in nothing else.
func (c Change) badText() string {
	for _, a := range c.Args {
		what, multiline := "the command", true
		switch c.Op {
		case "USER":
			what, multiline = "the user", false
		case "WORKDIR":
			what, multiline = "the directory", false
		}
		if msg := badText(what, a, multiline); msg != "" {
			return msg
		}
	}
	for _, p := range c.Pairs {
		if msg := badText("the key "+strconv.Quote(p[0]), p[0], false); msg != "" {
			return msg
		}
		if msg := badText("the value of "+strconv.Quote(p[0]), p[1], true); msg != "" {
			return msg
		}
	}
	return ""
}

// badText says what is wrong with s, what of an image's config, or "": a
// NUL, a control character (tabs and newlines allowed when multiline), or
// text that is not UTF-8.
func badText(what, s string, multiline bool) string {
	switch {
	case !utf8.ValidString(s):
		return what + " is not UTF-8"
	case strings.ContainsRune(s, 0):
		return what + " has a NUL character"
	case strings.ContainsFunc(s, func(r rune) bool { return termsafe.IsControl(r) && !(multiline && (r == '\t' || r == '\n')) }):
		if multiline {
			return what + " has a control character (only tabs and newlines are allowed)"
		}
		return what + " has a control character"
	}
	return ""
}

// CheckText refuses an --author or --message value (of the history and
// the config) that badText finds wrong; a message may have several lines.
func CheckText(flag, s string) error {
	if msg := badText("the value", s, flag == "--message"); msg != "" {
		return fmt.Errorf("invalid %s %q: %s", flag, s, msg)
	}
	return nil
}

// ApplyChanges applies the --change instructions, in order, to cfg. As in
// a Dockerfile, an ENTRYPOINT clears the image's CMD unless a CMD is among
// the changes, and a relative WORKDIR is relative to the one before.
func ApplyChanges(cfg *v1.Config, changes []Change) {
	setsCmd := false
	for _, c := range changes {
		setsCmd = setsCmd || c.Op == "CMD"
	}
	for _, c := range changes {
		switch c.Op {
		case "CMD":
			cfg.Cmd = c.Args
		case "ENTRYPOINT":
			cfg.Entrypoint = c.Args
			if !setsCmd {
				cfg.Cmd = nil
			}
		case "ENV":
			for _, p := range c.Pairs {
				cfg.Env = setEnv(cfg.Env, p[0], p[1])
			}
		case "LABEL":
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, p := range c.Pairs {
				cfg.Labels[p[0]] = p[1]
			}
		case "USER":
			cfg.User = c.Args[0]
		case "WORKDIR":
			dir := c.Args[0]
			if !path.IsAbs(dir) {
				dir = path.Join("/", cfg.WorkingDir, dir)
			}
			cfg.WorkingDir = path.Clean(dir)
		}
	}
}

// cutWord returns the first blank-separated word of s and the rest,
// trimmed.
func cutWord(s string) (string, string) {
	i := strings.IndexAny(s, " \t\n")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i+1:])
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out := append([]string{}, env...)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(append([]string{}, env...), k+"="+v)
}

// splitWords splits s into words as a shell would without expanding
// anything: blanks separate words, "…" and '…' quote (a backslash escapes
// " and \ inside double quotes), a backslash outside quotes escapes the
// next character.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("it ends with a backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("a ' is not closed")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New(`a " is not closed`)
			}
			inWord = true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
