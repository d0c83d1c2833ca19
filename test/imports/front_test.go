package imports

import (
	"go/build"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// frontAllowed are the packages devbox's front (cmd/devbox as release
// builds make it, -tags devbox_embedcli) may link besides the standard
// library: every package it links costs every devbox command start-up
// time (docs/architecture.md, "Front"). Adding one here needs a reason and
// a measurement (bench/suite-box.sh).
var frontAllowed = map[string]bool{
	"cmd/devbox":            true,
	"internal/configpath":   true, // where the configuration and the store are; the front reads no TOML: the CLI's caller record says what the file says (runtime/session)
	"provision":             true, // (a record's provisioning state: a session's locale)
	"hostexec":              true, // devbox-host when devbox is it
	"internal/libexec":      true, // the embedded CLI
	"internal/rundir":       true,
	"internal/self":         true,
	"internal/trace":        true,
	"internal/termsafe":     true, // (strings only) session messages without terminal escapes
	"internal/safefile":     true, // the session ticket's atomic write: imports only what the front links already (os, io/fs, path/filepath, unix); WriteFile is 0.5 KB of code; the replay's run lock and records too
	"internal/warm":         true, // run's replay through a warm holder
	"internal/seqpacket":    true,
	"internal/boxstdio":     true, // a session's fds 0-2 (the relay moved out of runtime/session): imports only what the front links already (os, io, sync, time, unix, term)
	"network/host/status":   true, // (encoding/json, sync; +18 KB) the replay's warning when the network helper fails
	"runtime/agent":         true,
	"runtime/session":       true,
	"golang.org/x/sys/unix": true,
	"golang.org/x/term":     true,
}

// frontDenied are standard packages too heavy for the front.
// (encoding/json stays: the agent's replies are JSON.)
var frontDenied = []string{"net/http", "crypto/tls", "text/template", "html/template", "go/", "debug/", "database/"}

// TestFrontStaysSmall walks the front's imports (module packages fully;
// other modules' packages are checked against frontAllowed, not walked).
func TestFrontStaysSmall(t *testing.T) {
	root := moduleRoot(t)
	ctx := build.Default
	ctx.CgoEnabled = false
	ctx.GOOS = "linux"
	ctx.BuildTags = []string{"devbox_embedcli"}
	seen := map[string]bool{}
	var bad []string
	var walk func(pkg string)
	walk = func(pkg string) {
		if seen[pkg] {
			return
		}
		seen[pkg] = true
		if !frontAllowed[pkg] {
			bad = append(bad, pkg)
		}
		if strings.Contains(strings.SplitN(pkg, "/", 2)[0], ".") {
			return // another module's
		}
		p, err := ctx.ImportDir(filepath.Join(root, filepath.FromSlash(pkg)), 0)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		for _, imp := range p.Imports {
			rel, ours := strings.CutPrefix(imp, module+"/")
			switch {
			case ours:
				walk(rel)
			case !strings.Contains(strings.SplitN(imp, "/", 2)[0], "."):
				for _, d := range frontDenied {
					if imp == d || strings.HasPrefix(imp, d) {
						bad = append(bad, imp+" (standard, but heavy; imported by "+pkg+")")
					}
				}
			default:
				walk(imp)
			}
		}
	}
	walk("cmd/devbox")
	if !seen["runtime/session"] || !seen["internal/libexec"] {
		t.Fatalf("the walk missed the front's own packages: %v", seen)
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("the front links %s: keep it out (or add it to frontAllowed with a measurement)", b)
	}
}
