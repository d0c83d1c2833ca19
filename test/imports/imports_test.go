// Package imports keeps the house's import rules: domain packages never
// import cobra, pflag or anything under cmd/; verb packages under cmd/ never
// import each other (they share cmd/cmdutil, cmd/factory, cmd/iostreams and
// cmd/config) and never start processes in namespaces themselves: they do
// not import rootless (the box lifecycle is package box's). It reads the
// source tree with go/build, so it needs no go tool at test time.
package imports

import (
	"go/build"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/devbox-dev/devbox"

// shared are the packages under cmd/ that every verb may import; main
// packages and the root that wires the verbs together may import verbs.
var shared = map[string]bool{
	"cmd/cmdutil": true, "cmd/factory": true, "cmd/iostreams": true, "cmd/config": true,
}

var wiring = map[string]bool{
	"cmd/root": true, "cmd/cli": true, "cmd/devbox-cli": true, "cmd/devbox": true, "cmd/devbox/gendocs": true, "cmd/devbox-init": true, "cmd/devbox-net": true,
}

// known are verb-to-verb imports that exist and are to go. The list only
// shrinks; it is empty.
var known = map[string]bool{}

// knownRootless are verb packages that still import rootless/ and are to
// go through package box instead. The list only shrinks; it is empty
// (devbox run is box.Manager.Run).
var knownRootless = map[string]bool{}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// packages maps each package directory (relative to the module root) to
// its non-test imports, module-relative where they are the module's.
func packages(t *testing.T, root string) map[string][]string {
	out := map[string][]string{}
	ctx := build.Default
	ctx.CgoEnabled = false
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "vendor") {
			return filepath.SkipDir
		}
		pkg, err := ctx.ImportDir(p, 0)
		if err != nil {
			return nil // no Go files for this platform
		}
		rel, _ := filepath.Rel(root, p)
		var imps []string
		for _, imp := range pkg.Imports {
			imps = append(imps, strings.TrimPrefix(imp, module+"/"))
		}
		out[filepath.ToSlash(rel)] = imps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// isVerb reports whether pkg is a verb package: under cmd/, neither shared
// by the verbs nor wiring them (main packages, the root, the factory).
func isVerb(pkg string) bool {
	return under(pkg, "cmd") && !shared[pkg] && !wiring[pkg] && pkg != "cmd/factory"
}

func TestImportRules(t *testing.T) {
	pkgs := packages(t, moduleRoot(t))
	if len(pkgs) < 20 || pkgs["cmd/box"] == nil || pkgs["runtime"] == nil {
		t.Fatalf("found only %d packages: not the devbox tree", len(pkgs))
	}
	var bad []string
	seen := map[string]bool{}
	for pkg, imps := range pkgs {
		for _, imp := range imps {
			cli := under(imp, "github.com/spf13/cobra") || under(imp, "github.com/spf13/pflag")
			switch {
			case !under(pkg, "cmd") && !under(pkg, "test") && !under(pkg, "completions") && (cli || under(imp, "cmd")):
				bad = append(bad, pkg+" -> "+imp+" (a domain package imports the CLI layer)")
			case under(pkg, "cmd") && under(imp, "cmd") && !shared[imp] && !wiring[pkg]:
				edge := pkg + " -> " + imp
				if known[edge] {
					seen[edge] = true
					continue
				}
				bad = append(bad, edge+" (a verb imports another verb: move the shared code into a domain package)")
			case isVerb(pkg) && under(imp, "rootless"):
				if knownRootless[pkg] {
					seen[pkg+" -> rootless"] = true
					continue
				}
				bad = append(bad, pkg+" -> "+imp+" (a verb starts processes in namespaces itself: do it in package box)")
			}
		}
	}
	for edge := range known {
		if !seen[edge] {
			bad = append(bad, edge+" is gone: remove it from the known list in test/imports")
		}
	}
	for pkg := range knownRootless {
		if !seen[pkg+" -> rootless"] {
			bad = append(bad, pkg+" no longer imports rootless: remove it from knownRootless in test/imports")
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}
