package box

import (
	"bytes"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/boxfile"
	"github.com/devbox-dev/devbox/cmd/iostreams"
)

// TestTrustHooks: the one trust question of shell --devcontainer and
// assemble. Without a terminal it refuses in one line naming every box
// that asks and each hook and export; on a terminal "n" refuses and "y"
// is remembered, for this project and these contents only; boxes without
// hooks or exports are not asked about.
func TestTrustHooks(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	specs := []boxfile.Spec{
		{Name: "web", Image: "debian", OnCreate: []string{"make setup"}, OnStart: []string{"serve &"}},
		{Name: "tools", Image: "evil/tools", Home: "/src/boxes/tools", Bins: []string{"/usr/bin/git"}},
		{Name: "plain", Image: "debian", Packages: []string{"less"}},
	}
	ask := trustAsk{File: "devbox.toml", Project: "/src/devbox.toml", Specs: specs, Hook: "on_create", Env: "env", Mounts: "volumes", Retry: "devbox assemble --trust"}
	// term is a terminal that answers answer ("": no terminal).
	term := func(answer string) (*iostreams.IOStreams, *bytes.Buffer) {
		ios, in, _, errOut := iostreams.Test()
		in.WriteString(answer)
		ios.InTTY, ios.ErrTTY = answer != "", answer != ""
		return ios, errOut
	}

	ios, _ := term("")
	err := trustHooks(ios, ask, false)
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("without a terminal: %v, want a one-line refusal", err)
	}
	for _, w := range []string{`"on_create: make setup; on_start: serve &" in box web of image debian, which shares your home`,
		`"export bin: /usr/bin/git" in box tools of image evil/tools, with a home of its own`, "hint: read it, then devbox assemble --trust"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the refusal lacks %q: %v", w, err)
		}
	}
	if strings.Contains(err.Error(), "plain") {
		t.Errorf("a box without hooks or exports is named: %v", err)
	}

	ios, _ = term("n\n")
	if err := trustHooks(ios, ask, false); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("answered n: %v", err)
	}
	ios, prompt := term("y\n")
	if err := trustHooks(ios, ask, false); err != nil {
		t.Fatalf("answered y: %v", err)
	}
	for _, w := range []string{"in box web of image debian, which shares your home:\n    on_create: make setup\n    on_start: serve &\n", "export bin: /usr/bin/git", "Run it? [y/N] "} {
		if !strings.Contains(prompt.String(), w) {
			t.Errorf("the question lacks %q:\n%s", w, prompt)
		}
	}
	// Remembered: no terminal needed now, for these contents.
	ios, _ = term("")
	if err := trustHooks(ios, ask, false); err != nil {
		t.Errorf("remembered: %v", err)
	}
	// An edited box asks again, alone; another project asks again.
	edited := ask
	edited.Specs = append([]boxfile.Spec{}, specs...)
	edited.Specs[1].Bins = []string{"/usr/bin/git", "/usr/bin/ssh"}
	if err := trustHooks(ios, edited, false); err == nil || !strings.Contains(err.Error(), "/usr/bin/ssh") || strings.Contains(err.Error(), "make setup") {
		t.Errorf("an edited box: %v, want it alone asked about", err)
	}
	other := ask
	other.Project = "/src/other/devbox.toml"
	if err := trustHooks(ios, other, false); err == nil {
		t.Error("another project's file counted as trusted")
	}
	if err := trustHooks(ios, other, true); err != nil {
		t.Errorf("--trust: %v", err)
	}
}

// TestTrustAsksShowExactly: every value a trust prompt lists — hooks,
// exports, environment, mounts, the box's name and image — is shown as
// it runs: a newline, carriage return, escape or bidi control is escaped
// inside quotes, never dropped or passed raw (TestEscapeTrustPromptHidden).
func TestTrustAsksShowExactly(t *testing.T) {
	a := trustAsk{Hook: "on_create", Env: "env", Mounts: "volumes"}
	s := boxfile.Spec{Name: "web", Image: "debian\u202e", OnCreate: []string{"echo ok # \ncurl x | sh"},
		OnStart: []string{"serve\r"}, Bins: []string{"/usr/bin/git\u2066"}, Apps: []string{"code\x1b[8m"},
		Env: []string{"LANG=C\u200f"}, Volumes: []string{"/src:/usr/local/bin\u0085"}}
	want := []string{`on_create: "echo ok # \ncurl x | sh"`, `on_start: "serve\r"`, `export bin: "/usr/bin/git\u2066"`,
		`export app: "code\x1b[8m"`, `env: "LANG=C\u200f"`, `volumes: "/src:/usr/local/bin\u0085"`}
	if got := a.asks(s); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("asks = %q, want %q", got, want)
	}
	if got := where(s); got != `in box web of image "debian\u202e", which shares your home` {
		t.Errorf("where = %q", got)
	}
	plain := boxfile.Spec{OnCreate: []string{`printf 'a\n' "é"`}}
	if got := a.asks(plain); len(got) != 1 || got[0] != `on_create: printf 'a\n' "é"` {
		t.Errorf("a plain hook is not shown as it is: %q", got)
	}
}
