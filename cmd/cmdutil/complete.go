package cmdutil

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/spf13/cobra"
)

// Shell completion. Every completion function here is a cobra.CompletionFunc
// builder that commands use as a ValidArgsFunction or register for a flag:
//
//	cmd.ValidArgsFunction = cmdutil.FirstArg(cmdutil.CompleteImages(f))
//	_ = cmd.RegisterFlagCompletionFunc("box", cmdutil.CompleteBoxes(f))
//
// Completion runs on every TAB, so these functions are quick, print nothing
// and never change anything on disk: a store that does not exist yet has no
// images, and nothing is created to find out.
//
// ApplyConventions, called once by cmd/root on the whole tree, gives the
// conventional flags (--platform, --pull, --net, --env, --image, --store,
// --log-level) their completion and parse-time checks, and infers the
// completion of positional arguments from the placeholders in Use (IMAGE,
// ALIAS, NAME, BOX). A new command that follows the conventions needs no
// completion code of its own.

// Platforms offered for --platform. Every value parses with
// image.ParsePlatform (a test checks it).
var Platforms = []cobra.Completion{
	"linux/amd64\tx86-64",
	"linux/arm64\t64-bit ARM (aarch64)",
	"linux/arm64/v8\t64-bit ARM (aarch64), explicit variant",
	"linux/arm/v7\t32-bit ARM, hard float",
	"linux/arm/v6\t32-bit ARM (Raspberry Pi 1, Zero)",
	"linux/386\t32-bit x86",
	"linux/ppc64le\tPOWER, little endian",
	"linux/s390x\tIBM Z",
	"linux/riscv64\t64-bit RISC-V",
}

// PullPolicies are the values of --pull.
var PullPolicies = []cobra.Completion{
	"missing\tpull only when the image is not in the store (default)",
	"always\tpull every time, to pick up updates",
	"never\tuse only the store; fail when the image is missing",
}

// NetworkModes are the values of --net a command offers when it registers
// none of its own.
var NetworkModes = []cobra.Completion{
	"none\tonly a loopback interface",
	"host\tshare the host's network",
}

// LogLevels are the values of --log-level.
var LogLevels = []cobra.Completion{"debug", "info", "warn", "error"}

// ValidPull reports whether s is a valid --pull value ("" is the default).
func ValidPull(s string) error {
	switch s {
	case "", "missing", "always", "never":
		return nil
	}
	return fmt.Errorf("invalid --pull %q (hint: use missing, always or never)", s)
}

// Fixed completes from a fixed list, filtered by what was typed so far.
func Fixed(values []cobra.Completion) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterPrefix(values, toComplete, nil), cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteAliases completes alias names (centos, fedora, …).
func CompleteAliases(f *Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterPrefix(aliasCompletions(f), toComplete, args), cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteImages completes an image to make a box from or to pull: the
// aliases, then the images in the store (full references and their short
// Docker Hub forms, e.g. debian:13).
func CompleteImages(f *Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		all := append(aliasCompletions(f), storedCompletions(f, false)...)
		return filterPrefix(all, toComplete, args), cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteStoredImages completes images that are in the store only (for
// rmi): their references, short forms and the aliases that name them.
func CompleteStoredImages(f *Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterPrefix(storedCompletions(f, true), toComplete, args), cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteBoxes completes the names of the user's boxes.
func CompleteBoxes(f *Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterPrefix(boxCompletions(f), toComplete, args), cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteEnv completes --env: the names of the host's environment
// variables (KEY alone passes the host's value; KEY= starts a value).
func CompleteEnv(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if strings.Contains(toComplete, "=") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "" && strings.HasPrefix(k, toComplete) && !strings.HasPrefix(k, "_") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), cobra.ShellCompDirectiveNoFileComp
}

// Union completes with every function given, in order.
func Union(fns ...cobra.CompletionFunc) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		seen := map[string]bool{}
		for _, fn := range fns {
			got, _ := fn(c, args, toComplete)
			for _, v := range got {
				if k := completionValue(v); !seen[k] {
					seen[k] = true
					out = append(out, v)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// FirstArg applies fn to the first positional argument only; later ones
// (a command to run in the box and its arguments) complete as files.
func FirstArg(fn cobra.CompletionFunc) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return fn(c, args, toComplete)
	}
}

// storeRoot returns the store directory without creating it, or "" when
// there is no store to read.
func storeRoot(f *Factory) string {
	if f == nil || f.Config == nil {
		return ""
	}
	c, err := f.Config()
	if err != nil {
		return ""
	}
	flag := ""
	if f.StoreRoot != nil {
		flag = *f.StoreRoot
	}
	root, err := c.StoreRoot(flag)
	if err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(root, "oci", "index.json")); err != nil {
		return ""
	}
	return root
}

func aliasCompletions(f *Factory) []cobra.Completion {
	if f == nil || f.Aliases == nil {
		return nil
	}
	tab, err := f.Aliases()
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, a := range tab.List() {
		desc := a.Description
		if desc == "" {
			desc = a.Ref
		}
		out = append(out, cobra.CompletionWithDesc(a.Name, desc))
	}
	return out
}

// storedCompletions lists the stored images. With aliases, the aliases that
// resolve to a stored image are offered too (rmi accepts them).
func storedCompletions(f *Factory, aliases bool) []cobra.Completion {
	root := storeRoot(f)
	if root == "" {
		return nil
	}
	imgs, err := (&store.Store{Root: root}).Images()
	if err != nil {
		return nil
	}
	stored := map[string]bool{}
	var out []cobra.Completion
	for _, i := range imgs {
		if i.Ref == "" {
			continue
		}
		stored[i.Ref] = true
		desc := "stored"
		if i.Platform != "" {
			desc += ", " + i.Platform
		}
		out = append(out, cobra.CompletionWithDesc(i.Ref, desc))
		if s := ShortRef(i.Ref); s != i.Ref {
			out = append(out, cobra.CompletionWithDesc(s, i.Ref))
		}
	}
	if aliases && f.Aliases != nil {
		if tab, err := f.Aliases(); err == nil {
			for _, a := range tab.List() {
				if named, _, err := image.Resolve(a.Name, tab); err == nil && stored[image.FullName(named)] {
					out = append(out, cobra.CompletionWithDesc(a.Name, image.FullName(named)))
				}
			}
		}
	}
	return out
}

// ShortRef is the form a Docker user types for a Docker Hub reference:
// docker.io/library/debian:13 → debian:13, docker.io/me/x:1 → me/x:1.
// Other references are returned unchanged.
func ShortRef(ref string) string {
	if s, ok := strings.CutPrefix(ref, "docker.io/library/"); ok {
		return s
	}
	if s, ok := strings.CutPrefix(ref, "docker.io/"); ok {
		return s
	}
	return ref
}

func boxCompletions(f *Factory) []cobra.Completion {
	if f == nil || f.BoxNames == nil || storeRoot(f) == "" {
		return nil
	}
	names, err := f.BoxNames()
	if err != nil {
		return nil
	}
	return names
}

// filterPrefix keeps the completions whose value starts with prefix and is
// not already among args.
func filterPrefix(values []cobra.Completion, prefix string, args []string) []cobra.Completion {
	var out []cobra.Completion
	for _, v := range values {
		k := completionValue(v)
		if k == "" || !strings.HasPrefix(k, prefix) || slices.Contains(args, k) {
			continue
		}
		out = append(out, v)
	}
	return out
}

func completionValue(c cobra.Completion) string {
	v, _, _ := strings.Cut(c, "\t")
	return v
}
