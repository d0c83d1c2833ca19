package completions_test

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/cmd/factory"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/cmd/root"
	"github.com/devbox-dev/devbox/image/store"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/test/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// scripts are the committed files and the shells they are generated for
// (the same list as generate.sh).
var scripts = []struct{ shell, file string }{
	{"bash", "devbox.bash"},
	{"zsh", "_devbox"},
	{"fish", "devbox.fish"},
	{"powershell", "devbox.ps1"},
}

func tree() *cobra.Command {
	ios, _, _, _ := iostreams.Test()
	return root.NewCmdRoot(factory.New(ios, slog.New(slog.NewTextHandler(io.Discard, nil))))
}

// generate runs `devbox completion SHELL` on the command tree in process.
func generate(t *testing.T, shell string) []byte {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	cmd := root.NewCmdRoot(factory.New(ios, slog.New(slog.NewTextHandler(io.Discard, nil))))
	cmd.SetArgs([]string{"completion", shell})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("devbox completion %s: %v (%s)", shell, err, errOut)
	}
	return out.Bytes()
}

// TestScriptsAreCurrent is the drift check: every committed script is
// exactly what the command tree generates today.
func TestScriptsAreCurrent(t *testing.T) {
	for _, s := range scripts {
		want := generate(t, s.shell)
		got, err := os.ReadFile(s.file)
		switch {
		case err != nil:
			t.Errorf("reading completions/%s: %v (hint: run completions/generate.sh and commit the result)", s.file, err)
		case !bytes.Equal(got, want):
			t.Errorf("completions/%s differs from what `devbox completion %s` generates (hint: run completions/generate.sh and commit the result)", s.file, s.shell)
		}
	}
}

// has reports whether the command tree has the subcommand path.
func has(path ...string) bool {
	c, rest, err := tree().Find(path)
	return err == nil && len(rest) == 0 && c.Name() == path[len(path)-1]
}

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuiltDevbox()
	os.Exit(code)
}

// env is an isolated user: a config with an alias of its own, a store with
// two images and a box.
type env struct {
	home, bin string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{home: t.TempDir(), bin: testutil.DevboxOnPath(t)}
	cfg := filepath.Join(e.home, ".config", "devbox")
	if err := os.MkdirAll(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "config.toml"), []byte("[aliases]\nmybox = \"quay.io/example/mybox:1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(e.home, ".local", "share", "devbox"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"docker.io/library/debian:13", "quay.io/example/tool:1"} {
		desc := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2,
			Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
		if err := st.Tag(ref, desc, store.Origin{}); err != nil {
			t.Fatal(err)
		}
	}
	bs := &rbox.Store{Dir: st.ContainersDir()}
	if err := bs.Create(&rbox.Record{ID: strings.Repeat("0f", 16), Name: "work", Hostname: "work", Lowers: []string{strings.Repeat("cd", 32)}}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) environ() []string {
	return []string{
		"HOME=" + e.home, "PATH=" + e.bin + ":/usr/local/bin:/usr/bin:/bin",
		"XDG_CONFIG_HOME=" + filepath.Join(e.home, ".config"), "XDG_DATA_HOME=" + filepath.Join(e.home, ".local", "share"),
		"LANG=C.UTF-8", "TERM=dumb",
	}
}

// completionCase is one command line (the cursor at its end) and what its
// completion must and must not offer.
type completionCase struct {
	line    string
	want    []string // all offered
	exact   bool     // and nothing else
	notWant []string
	// when set, the case applies only if the command tree has this path;
	// otherwise the value must not be offered (a command that lands later
	// turns the case on by itself).
	needs []string
}

func cases() []completionCase {
	return []completionCase{
		{line: "devbox pu", want: []string{"pull", "push"}, exact: true},
		{line: "devbox pull deb", want: []string{"debian", "debian:13"}, exact: true}, // the alias, and the stored image
		{line: "devbox pull alp", want: []string{"alpine"}, exact: true},
		{line: "devbox sh", want: []string{"shell"}, exact: true, needs: []string{"shell"}},
		{line: "devbox run myb", want: []string{"mybox"}, exact: true},
		{line: "devbox pull --platform linux/ar", want: []string{"linux/arm64", "linux/arm64/v8", "linux/arm/v7", "linux/arm/v6"}, exact: true},
		{line: "devbox run --pull a", want: []string{"always"}, exact: true},
		{line: "devbox run --net h", want: []string{"host"}, exact: true},
		{line: "devbox --log-level d", want: []string{"debug"}, exact: true},
		{line: "devbox help exit", want: []string{"exit-codes"}, exact: true},
		{line: "devbox completion f", want: []string{"fish"}, exact: true},
		{line: "devbox rmi ", want: []string{"docker.io/library/debian:13", "debian:13", "debian", "quay.io/example/tool:1"},
			notWant: []string{"fedora", "centos"}},
		{line: "devbox image rm quay", want: []string{"quay.io/example/tool:1"}, exact: true},
		{line: "devbox rmi debian:13 deb", want: []string{"debian"}, notWant: []string{"debian:13"}},
		{line: "devbox stop w", want: []string{"work"}, exact: true, needs: []string{"stop"}},
	}
}

// check compares what a shell offered with the case.
func (c completionCase) check(t *testing.T, shell string, got []string) {
	t.Helper()
	if len(c.needs) > 0 && !has(c.needs...) {
		for _, w := range c.want {
			if slices.Contains(got, w) {
				t.Errorf("%s: %q offered %q, but there is no %q command", shell, c.line, w, strings.Join(c.needs, " "))
			}
		}
		t.Logf("%s: %q: no %q command yet, so only checked that %v is not offered", shell, c.line, strings.Join(c.needs, " "), c.want)
		return
	}
	for _, w := range c.want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: completing %q offered %q, want %q among them", shell, c.line, got, w)
		}
	}
	for _, w := range c.notWant {
		if slices.Contains(got, w) {
			t.Errorf("%s: completing %q offered %q, which must not be offered", shell, c.line, w)
		}
	}
	if c.exact && len(got) != len(c.want) {
		t.Errorf("%s: completing %q offered %q, want exactly %q", shell, c.line, got, c.want)
	}
}

func requireShell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testutil.Skip(t, name+" is not installed (test/provision.sh installs it: apt-get install bash-completion zsh fish)")
	}
	return p
}

// bashScript sources the generated script and calls its completion
// function the way bash does on TAB: COMP_WORDS, COMP_CWORD, COMP_LINE and
// COMP_POINT describe the line, __start_devbox fills COMPREPLY.
const bashScript = `
source /usr/share/bash-completion/bash_completion
source "$1"
enable -n compopt  # only valid inside a real completion; the script checks for it
COMP_LINE="$2"
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
__start_devbox devbox "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
`

func TestBash(t *testing.T) {
	bash := requireShell(t, "bash")
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		testutil.Skip(t, "bash-completion is not installed (apt-get install bash-completion)")
	}
	e := newEnv(t)
	script, _ := filepath.Abs("devbox.bash")
	for _, c := range cases() {
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", bashScript, "bash", script, c.line)
		cmd.Env = e.environ()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("bash: completing %q: %v: %s", c.line, err, stderr.String())
			continue
		}
		var got []string
		for l := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
			// With several matches bash shows "value  (description)".
			if v, _, _ := strings.Cut(l, " "); v != "" {
				got = append(got, v)
			}
		}
		c.check(t, "bash", got)
	}
}

func TestFish(t *testing.T) {
	fish := requireShell(t, "fish")
	e := newEnv(t)
	script, _ := filepath.Abs("devbox.fish")
	for _, c := range cases() {
		cmd := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete --do-complete=$argv[2]", script, c.line)
		cmd.Env = e.environ()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("fish: completing %q: %v: %s", c.line, err, stderr.String())
			continue
		}
		var got []string
		for l := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
			if v, _, _ := strings.Cut(l, "\t"); v != "" {
				// fish prints the whole token being completed.
				got = append(got, v)
			}
		}
		c.check(t, "fish", got)
	}
}

// zshDriver runs an interactive zsh on a pseudo-terminal (zsh/zpty), loads
// the generated _devbox through compinit, types the line and TAB, then a key
// bound to a widget that writes the edited line to a file.
const zshDriver = `
zmodload zsh/zpty || exit 3
zpty z 'zsh -f -i'
zpty -w z 'fpath=($DEVBOX_COMPLETIONS $fpath); autoload -U compinit; compinit -u -D; dump() { print -r -- "$BUFFER" >$DEVBOX_DUMP }; zle -N dump; bindkey "^T" dump'
zpty -w -n z "$1"$'\t\x14'
for i in {1..100}; do [[ -s $DEVBOX_DUMP ]] && break; sleep 0.1; done
zpty -d z
`

func TestZsh(t *testing.T) {
	zsh := requireShell(t, "zsh")
	e := newEnv(t)
	dir, _ := filepath.Abs(".")
	for _, c := range cases() {
		// The line after TAB shows a single match only; zsh lists several.
		if !c.exact || len(c.want) != 1 {
			continue
		}
		dump := filepath.Join(t.TempDir(), "buffer")
		cmd := exec.Command(zsh, "-f", "-c", zshDriver, "zsh", c.line)
		cmd.Env = append(e.environ(), "DEVBOX_COMPLETIONS="+dir, "DEVBOX_DUMP="+dump)
		done := make(chan error, 1)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("zsh: completing %q: %v: %s", c.line, err, out.String())
				continue
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("zsh: completing %q timed out", c.line)
			continue
		}
		b, err := os.ReadFile(dump)
		if err != nil {
			t.Errorf("zsh: completing %q: the edited line was not written: %v", c.line, err)
			continue
		}
		line := strings.TrimRight(string(b), "\n")
		// The completed word replaces the last word of the line.
		words := strings.Fields(line)
		var got []string
		if line != c.line && len(words) > 0 && strings.HasSuffix(line, " ") {
			got = []string{words[len(words)-1]}
		}
		c.check(t, "zsh", got)
	}
}
