// Package version implements `devbox version`: the build and what the host
// offers, one fact per line (or JSON).
package version

import (
	"encoding/json"
	"fmt"
	"github.com/devbox-dev/devbox/internal/self"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/doctor"
	"github.com/devbox-dev/devbox/internal/libexec"
	"github.com/spf13/cobra"
)

// Options are the parsed flags, and the build's stamp.
type Options struct {
	JSON bool
	// Version and Commit are stamped into cmd/root at build time.
	Version, Commit string
}

// Info is the JSON form of `devbox version --json` (docs/json.md).
type Info struct {
	Version  string              `json:"version"`
	Commit   string              `json:"commit"`
	Go       string              `json:"go"`
	Platform string              `json:"platform"`
	Init     string              `json:"init"`
	Front    string              `json:"front"`
	Host     doctor.Capabilities `json:"host"`
}

// NewCmdVersion builds the command.
func NewCmdVersion(f *cmdutil.Factory, version, commit string) *cobra.Command {
	opts := &Options{Version: version, Commit: commit}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print devbox's version and what this host offers it",
		Long: "Print the version, commit and Go version of this build, then what the host\n" +
			"offers devbox, read from its settings (devbox doctor tries them for real).",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return Run(f, opts) },
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON object (docs/json.md)")
	return cmd
}

// Collect returns the build and host information.
func Collect(f *cmdutil.Factory, opts *Options) Info {
	commit := opts.Commit
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	return Info{
		Version:  opts.Version,
		Commit:   commit,
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Init:     initDesc(),
		Front:    frontDesc(),
		Host:     doctor.Detect(cmdutil.HostEnv(f)),
	}
}

// Run prints the information.
func Run(f *cmdutil.Factory, opts *Options) error {
	info := Collect(f, opts)
	out := f.IOStreams.Out
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	h := info.Host
	tw := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("version", info.Version)
	line("commit", or(info.Commit, "unknown"))
	line("go", info.Go)
	line("platform", info.Platform)
	line("init", info.Init)
	line("front", info.Front)
	line("kernel", or(h.Kernel, "unknown"))
	line("userns", h.Userns)
	line("subuid", ranges(h.SubUID))
	line("subgid", ranges(h.SubGID))
	line("newuidmap", or(h.NewUIDMap, "missing"))
	line("overlay", h.Overlay)
	cg := h.Cgroup
	if len(h.CgroupControllers) > 0 {
		cg += " (" + strings.Join(h.CgroupControllers, " ") + ")"
	}
	line("cgroup", cg)
	line("network", or(strings.Join(h.Network, " "), "none"))
	return tw.Flush()
}

func ranges(rs []doctor.IDRange) string {
	if len(rs) == 0 {
		return "none (only your own id is mapped)"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d-%d", r.Start, r.Start+r.Length-1)
	}
	return strings.Join(parts, ", ")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// frontDesc says how this CLI runs: executed by devbox's front, which
// embeds it (release builds: the CLI's copy is named after its digest),
// or linked into it.
func frontDesc() string {
	f := self.Front()
	if f == "" {
		return "none: devbox is the CLI itself (a build without -tags devbox_embedcli)"
	}
	exe, _ := os.Executable()
	d := strings.TrimPrefix(filepath.Base(filepath.Dir(exe)), libexec.CLI+"-")
	if filepath.Base(exe) != libexec.CLI || len(d) < 12 {
		return f + " + embedded " + libexec.CLI + " (" + exe + ")"
	}
	return f + " + embedded " + libexec.CLI + " sha256:" + d[:12]
}

// initDesc says which programs boxes run as their init and network helper:
// the small ones embedded by make build and release builds, or devbox
// itself.
func initDesc() string {
	var parts []string
	for _, name := range []string{libexec.Init, libexec.Net} {
		if d := libexec.Digest(name); d != "" {
			parts = append(parts, "embedded "+name+" sha256:"+d[:min(12, len(d))])
		}
	}
	if len(parts) == 0 {
		return "devbox itself (a build without -tags devbox_embedinit)"
	}
	return strings.Join(parts, ", ")
}
