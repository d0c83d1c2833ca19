// Command gendocs writes devbox's man pages from its cobra command tree:
// devbox(1), one page per command (devbox-pull(1), devbox-image-prune(1), …)
// and one per help topic (devbox-exit-codes(1)). Release builds run it
// (goreleaser.yaml); the pages are not committed.
//
//	go run ./cmd/devbox/gendocs -out man -version v1.2.3 [-gzip]
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/devbox-dev/devbox/cmd/factory"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/cmd/root"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func main() {
	out := flag.String("out", "man", "directory to write the pages to")
	version := flag.String("version", root.Version, "version named in the page footers")
	gz := flag.Bool("gzip", false, "write NAME.1.gz instead of NAME.1 (as packages install them)")
	flag.Parse()
	if err := generate(*out, *version, *gz, buildDate()); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// buildDate is SOURCE_DATE_EPOCH when set, for reproducible pages.
func buildDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC()
}

func generate(dir, version string, gz bool, date time.Time) error {
	ios, _, _, _ := iostreams.Test()
	cmd := root.NewCmdRoot(factory.New(ios, slog.New(slog.NewTextHandler(io.Discard, nil))))
	cmd.InitDefaultHelpCmd()
	cmd.InitDefaultCompletionCmd()
	cmd.DisableAutoGenTag = true
	header := &doc.GenManHeader{
		Title:   "DEVBOX",
		Section: "1",
		Source:  "devbox " + version,
		Manual:  "devbox manual",
		Date:    &date,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var write func(c *cobra.Command) error
	write = func(c *cobra.Command) error {
		for _, sub := range c.Commands() {
			// GenManTree leaves out help topics; they get pages too.
			if (sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand()) && sub.Name() != "help" {
				if err := write(sub); err != nil {
					return err
				}
			}
		}
		var buf bytes.Buffer
		h := *header
		if err := doc.GenMan(c, &h, &buf); err != nil {
			return fmt.Errorf("%s: %w", c.CommandPath(), err)
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		return writePage(filepath.Join(dir, name), buf.Bytes(), gz)
	}
	return write(cmd)
}

func writePage(path string, page []byte, gz bool) error {
	if !gz {
		return os.WriteFile(path, page, 0o644)
	}
	var buf bytes.Buffer
	// No name and no time in the header: the same page, the same bytes.
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(page); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path+".gz", buf.Bytes(), 0o644)
}
