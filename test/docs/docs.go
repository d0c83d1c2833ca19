// Package docs is the documentation test's table: every example command
// of README.md, docs/*.md and the Example: blocks of devbox --help, with
// what running it must show. Extract finds the examples; Examples says
// how each is run and checked. The unit test (go test ./test/docs) fails
// when an example has no row or a row no example, so a new example cannot
// land without its check; test/integration (TestDocExamples) runs them all
// as the unprivileged user against the offline images.
//
// What counts as an example: in the Markdown files, each line of a fenced
// block marked sh, bash, shell or console that starts with devbox or
// bin/devbox (after an optional "$ " prompt) or pipes into devbox; in
// --help, each line of a command's Example. A trailing "  # comment" is not
// part of the key, and bin/devbox is keyed as devbox: one row serves the
// README's and --help's copy of the same command.
package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// Found is one example and where it was found.
type Found struct {
	Text   string // the key: the command as written, normalised
	Source string // README.md:12, or devbox run --help
}

// Extract returns the examples of the repository at root and of the
// command tree cmd, sorted by key then source.
func Extract(root string, cmd *cobra.Command) ([]Found, error) {
	files := []string{filepath.Join(root, "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	files = append(files, more...)
	var out []Found
	for _, f := range files {
		found, err := fromMarkdown(f, root)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	out = append(out, fromHelp(cmd)...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Text != out[j].Text {
			return out[i].Text < out[j].Text
		}
		return out[i].Source < out[j].Source
	})
	return out, nil
}

var (
	fence     = regexp.MustCompile("^\\s*```+\\s*([A-Za-z0-9_-]*)")
	isCommand = regexp.MustCompile(`^(bin/)?devbox(\s|$)|\|\s*(bin/)?devbox\s`)
	comment   = regexp.MustCompile(`\s{2,}#.*$`)
)

func fromMarkdown(path, root string) ([]Found, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rel, _ := filepath.Rel(root, path)
	var out []Found
	in, shell := false, false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			if in {
				in = false
			} else {
				in = true
				switch m[1] {
				case "sh", "bash", "shell", "console":
					shell = true
				default:
					shell = false
				}
			}
			continue
		}
		if !in || !shell {
			continue
		}
		if k := Key(line); k != "" {
			out = append(out, Found{Text: k, Source: rel + ":" + itoa(n)})
		}
	}
	return out, sc.Err()
}

func fromHelp(root *cobra.Command) []Found {
	var out []Found
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			if k := Key(line); k != "" {
				out = append(out, Found{Text: k, Source: c.CommandPath() + " --help"})
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// Key normalises an example line, "" when the line is not a devbox
// command: surrounding space, a "$ " prompt and a trailing comment go;
// bin/devbox at the start becomes devbox.
func Key(line string) string {
	t := strings.TrimSpace(line)
	t = strings.TrimPrefix(t, "$ ")
	if !isCommand.MatchString(t) {
		return ""
	}
	t = strings.TrimSpace(comment.ReplaceAllString(t, ""))
	t = strings.TrimPrefix(t, "bin/")
	return strings.Join(strings.Fields(t), " ")
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}
