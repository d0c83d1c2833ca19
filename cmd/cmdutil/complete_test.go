package cmdutil

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/store"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

func TestPlatformsParse(t *testing.T) {
	for _, p := range Platforms {
		v := completionValue(p)
		if _, err := image.ParsePlatform(v); err != nil {
			t.Errorf("completion value %q does not parse: %v", v, err)
		}
	}
}

func TestArgKinds(t *testing.T) {
	cases := []struct {
		use    string
		kinds  []string
		repeat bool
	}{
		{"pull IMAGE...", []string{"IMAGE"}, true},
		{"run [flags] IMAGE [--] [COMMAND [ARG...]]", []string{"IMAGE"}, false},
		{"shell NAME|ALIAS [--] [COMMAND [ARG...]]", []string{"NAME", "ALIAS"}, false},
		{"rm [-f] NAME...", []string{"NAME"}, true},
		{"stats [flags] [BOX...]", []string{"BOX"}, true},
		{"inspect NAME...", []string{"NAME"}, true},
		{"images", nil, false},
		{"completion [bash|zsh|fish|powershell]", nil, false},
		{"help [command]", nil, false},
		{"x IMAGE|lower", nil, false},
		{"", nil, false},
		{"x [flags]", nil, false},
	}
	for _, c := range cases {
		kinds, repeat := ArgKinds(c.use)
		if !reflect.DeepEqual(kinds, c.kinds) || repeat != c.repeat {
			t.Errorf("ArgKinds(%q) = %v, %v; want %v, %v", c.use, kinds, repeat, c.kinds, c.repeat)
		}
	}
}

func FuzzArgKinds(f *testing.F) {
	for _, s := range []string{"pull IMAGE...", "shell NAME|ALIAS [--] [COMMAND [ARG...]]", "rm [-f] NAME...", "x [|]", "x ...", "x [[[", "x |...|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, use string) {
		kinds, _ := ArgKinds(use)
		for _, k := range kinds {
			if k == "" || strings.ToUpper(k) != k {
				t.Errorf("ArgKinds(%q) returned kind %q", use, k)
			}
		}
		_ = ArgCompletion(use, nil)
	})
}

func TestShortRef(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/debian:13":   "debian:13",
		"docker.io/me/tool:1":           "me/tool:1",
		"quay.io/centos/centos:stream9": "quay.io/centos/centos:stream9",
	} {
		if got := ShortRef(in); got != want {
			t.Errorf("ShortRef(%q) = %q, want %q", in, got, want)
		}
	}
}

// testFactory has a config (with an alias of its own) and a store root.
func testFactory(t *testing.T, root string) *Factory {
	t.Helper()
	cfg := &config.Config{Aliases: map[string]string{"mybox": "quay.io/me/mybox:1"}}
	return &Factory{
		StoreRoot: &root,
		Config:    func() (*config.Config, error) { return cfg, nil },
		Aliases:   func() (alias.Table, error) { return alias.New(cfg.Aliases), nil },
		BoxNames:  func() ([]string, error) { return []string{"dev", "work"}, nil },
	}
}

func values(cs []cobra.Completion) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = completionValue(c)
	}
	return out
}

func TestCompleteFromStore(t *testing.T) {
	root := t.TempDir()
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	desc := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)}}
	for _, ref := range []string{"docker.io/library/debian:13", "quay.io/me/tool:2"} {
		if err := st.Tag(ref, desc, store.Origin{}); err != nil {
			t.Fatal(err)
		}
	}
	f := testFactory(t, root)
	cases := []struct {
		name   string
		fn     cobra.CompletionFunc
		args   []string
		prefix string
		want   []string
	}{
		{"images by prefix", CompleteImages(f), nil, "deb", []string{"debian", "debian:13"}},
		{"full references", CompleteImages(f), nil, "docker.io/", []string{"docker.io/library/debian:13"}},
		{"user alias", CompleteImages(f), nil, "myb", []string{"mybox"}},
		{"stored only", CompleteStoredImages(f), nil, "", []string{"docker.io/library/debian:13", "debian:13", "quay.io/me/tool:2", "debian"}},
		{"already given", CompleteStoredImages(f), []string{"debian:13"}, "deb", []string{"debian"}},
		{"aliases", CompleteAliases(f), nil, "cent", []string{"centos"}},
		{"boxes", CompleteBoxes(f), []string{"dev"}, "", []string{"work"}},
		{"platforms", Fixed(Platforms), nil, "linux/a", []string{"linux/amd64", "linux/arm64", "linux/arm64/v8", "linux/arm/v7", "linux/arm/v6"}},
		{"first arg only", FirstArg(CompleteImages(f)), []string{"debian"}, "", nil},
	}
	for _, c := range cases {
		got, dir := c.fn(nil, c.args, c.prefix)
		if !reflect.DeepEqual(values(got), c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s: got %q, want %q", c.name, values(got), c.want)
		}
		if c.name != "first arg only" && dir != cobra.ShellCompDirectiveNoFileComp {
			t.Errorf("%s: directive %v, want NoFileComp", c.name, dir)
		}
	}
}

// Completion runs on every TAB: it must not create a store to look in it.
func TestCompleteCreatesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "not-yet")
	f := testFactory(t, root)
	got, _ := CompleteImages(f)(nil, nil, "")
	if !slices.Contains(values(got), "debian") {
		t.Errorf("aliases missing without a store: %q", values(got))
	}
	if boxes, _ := CompleteBoxes(f)(nil, nil, ""); len(boxes) != 0 {
		t.Errorf("boxes offered without a store: %q", boxes)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("completion created %s (stat: %v)", root, err)
	}
}

func TestCompleteEnv(t *testing.T) {
	t.Setenv("DEVBOX_TEST_COMPLETE_ENV", "x")
	got, _ := CompleteEnv(nil, nil, "DEVBOX_TEST_COMPLETE")
	if !reflect.DeepEqual(values(got), []string{"DEVBOX_TEST_COMPLETE_ENV"}) {
		t.Errorf("got %q", values(got))
	}
	if got, _ := CompleteEnv(nil, nil, "A=b"); len(got) != 0 {
		t.Errorf("a value was completed: %q", got)
	}
}

func TestApplyConventions(t *testing.T) {
	f := testFactory(t, t.TempDir())
	var platform, pull, net string
	root := &cobra.Command{Use: "devbox"}
	pullCmd := &cobra.Command{Use: "pull IMAGE...", RunE: func(*cobra.Command, []string) error { return nil }}
	pullCmd.Flags().StringVar(&platform, "platform", "", "")
	runCmd := &cobra.Command{Use: "run [flags] IMAGE [--] [COMMAND]", RunE: func(*cobra.Command, []string) error { return nil }}
	runCmd.Flags().StringVar(&pull, "pull", "missing", "")
	runCmd.Flags().StringVar(&net, "net", "none", "")
	own := cobra.FixedCompletions([]string{"mine"}, cobra.ShellCompDirectiveNoFileComp)
	_ = runCmd.RegisterFlagCompletionFunc("net", own)
	rmCmd := &cobra.Command{Use: "rm NAME...", ValidArgsFunction: own, RunE: func(*cobra.Command, []string) error { return nil }}
	root.AddCommand(pullCmd, runCmd, rmCmd)
	ApplyConventions(root, f)

	if err := pullCmd.Flags().Set("platform", "linux"); err == nil || !strings.Contains(err.Error(), "hint") {
		t.Errorf("--platform linux: err %v, want an error with a hint", err)
	}
	if err := pullCmd.Flags().Set("platform", "linux/arm64"); err != nil || platform != "linux/arm64" {
		t.Errorf("--platform linux/arm64: err %v, value %q", err, platform)
	}
	if err := runCmd.Flags().Set("pull", "sometimes"); err == nil || !strings.Contains(err.Error(), "hint") {
		t.Errorf("--pull sometimes: err %v", err)
	}
	if fn, ok := pullCmd.GetFlagCompletionFunc("platform"); !ok {
		t.Error("--platform has no completion")
	} else if got, _ := fn(pullCmd, nil, "linux/s"); !reflect.DeepEqual(values(got), []string{"linux/s390x"}) {
		t.Errorf("--platform linux/s completes %q", values(got))
	}
	if fn, _ := runCmd.GetFlagCompletionFunc("net"); fn != nil {
		if got, _ := fn(runCmd, nil, ""); !reflect.DeepEqual(got, []cobra.Completion{"mine"}) {
			t.Errorf("a command's own --net completion was replaced: %q", got)
		}
	}
	if pullCmd.ValidArgsFunction == nil || runCmd.ValidArgsFunction == nil {
		t.Fatal("IMAGE arguments have no completion")
	}
	if got, _ := runCmd.ValidArgsFunction(runCmd, []string{"debian"}, ""); len(got) != 0 {
		t.Errorf("run completes images after IMAGE: %q", got)
	}
	if got, _ := pullCmd.ValidArgsFunction(pullCmd, []string{"debian"}, "alp"); !reflect.DeepEqual(values(got), []string{"alpine"}) {
		t.Errorf("pull IMAGE... second argument: %q", values(got))
	}
	if got, _ := rmCmd.ValidArgsFunction(rmCmd, nil, ""); !reflect.DeepEqual(got, []cobra.Completion{"mine"}) {
		t.Errorf("an explicit ValidArgsFunction was replaced: %q", got)
	}
}
