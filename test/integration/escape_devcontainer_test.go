//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEscapeDevcontainerWithoutHook: a repository's devcontainer.json
// without a postCreateCommand was assembled without asking, yet its
// containerEnv and mounts decide what runs as the user in a box that shares
// the home: BASH_ENV (or PATH) naming a script of the repository's, or a
// directory of the repository's bound over /usr/local/bin, runs the
// repository's code at the user's first command, whatever the image. Each
// must be trusted like a hook: without a terminal nothing is made and the
// error names --trust; with --trust the box is made.
func TestEscapeDevcontainerWithoutHook(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	marker := filepath.Join(e.home, "repository-code-ran")
	script := "#!/bin/sh\necho ran > " + marker + "\n"
	for _, tc := range []struct {
		name, json string
		files      map[string]string // relative to the project: content (executable)
		cmd        []string
	}{
		{name: "bashenv", json: `{"image": "debian", "containerEnv": {"BASH_ENV": "${containerWorkspaceFolder}/.devcontainer/env.sh"}}`,
			files: map[string]string{".devcontainer/env.sh": script}, cmd: []string{"bash", "-c", "true"}},
		{name: "path", json: `{"image": "debian", "containerEnv": {"PATH": "${containerWorkspaceFolder}/.tools:/usr/bin:/bin"}}`,
			files: map[string]string{".tools/ls": script}, cmd: []string{"ls"}},
		{name: "mounts", json: `{"image": "debian", "mounts": ["source=${localWorkspaceFolder}/.tools,target=/usr/local/bin,type=bind"]}`,
			files: map[string]string{".tools/ls": script}, cmd: []string{"ls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proj := filepath.Join(e.home, "cloned-"+tc.name)
			if err := os.MkdirAll(filepath.Join(proj, ".devcontainer"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(proj, ".devcontainer", "devcontainer.json"), []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			for p, s := range tc.files {
				p = filepath.Join(proj, p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			os.Remove(marker)
			args := append([]string{"shell", "--devcontainer=" + proj, "--"}, tc.cmd...)
			r := e.run(args...)
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the repository's code ran unasked (exit %d):\n%s", r.code, r.stderr)
			}
			if r.code != 125 || !strings.Contains(r.stderr, "--trust") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("without a terminal: exit %d %q, want 125 and one line naming --trust", r.code, r.stderr)
			}
			for _, b := range e.boxes() {
				if b.Name == "cloned-"+tc.name {
					t.Errorf("an untrusted devcontainer.json's box was made: %+v", b)
				}
			}
			// Trusted, it is what the file says.
			trusted := append([]string{"shell", "--devcontainer=" + proj, "--trust", "--"}, tc.cmd...)
			if r := e.run(trusted...); r.code != 0 {
				t.Fatalf("--trust: exit %d\n%s", r.code, r.stderr)
			}
			if _, err := os.Stat(marker); err != nil {
				t.Errorf("--trust: the file's box is not the one it describes (the test is void): %v", err)
			}
			e.ok("rm", "-f", "cloned-"+tc.name)
		})
	}
}

// TestEscapeDevcontainerTrustReuse: a trust given to one project with one
// content is not reused by another: the same file in another directory, a
// devcontainer.json that is a symbolic link to the trusted one, or the
// trusted project's file swapped for a link to an edited copy. Each is
// refused without a terminal; the trusted one still runs.
func TestEscapeDevcontainerTrustReuse(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	marker := filepath.Join(e.home, "hook-ran")
	content := func(hook string) string {
		return `{"image": "busybox", "postCreateCommand": "` + hook + ` > ` + marker + `"}`
	}
	mk := func(name, body string) string {
		proj := filepath.Join(e.home, name)
		if err := os.MkdirAll(filepath.Join(proj, ".devcontainer"), 0o755); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			if err := os.WriteFile(filepath.Join(proj, ".devcontainer", "devcontainer.json"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return proj
	}
	trusted := mk("trusted", content("echo trusted"))
	if r := e.run("shell", "--devcontainer="+trusted, "--trust", "--", "true"); r.code != 0 {
		t.Fatalf("--trust: exit %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(marker); string(b) != "trusted\n" {
		t.Fatalf("the trusted hook did not run (the test is void): %q", b)
	}
	os.Remove(marker)
	refused := func(what, proj string) {
		t.Helper()
		r := e.run("shell", "--devcontainer="+proj, "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "--trust") {
			t.Errorf("%s: exit %d %q, want 125 naming --trust", what, r.code, r.stderr)
		}
		if b, err := os.ReadFile(marker); err == nil {
			t.Errorf("%s: the hook ran: %q", what, b)
			os.Remove(marker)
		}
	}
	refused("the same content in another directory", mk("copy", content("echo trusted")))
	linked := mk("linked", "")
	if err := os.Symlink(filepath.Join(trusted, ".devcontainer", "devcontainer.json"), filepath.Join(linked, ".devcontainer", "devcontainer.json")); err != nil {
		t.Fatal(err)
	}
	refused("a link to the trusted file", linked)
	edited := filepath.Join(e.home, "edited.json")
	if err := os.WriteFile(edited, []byte(content("echo edited")), 0o644); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(trusted, ".devcontainer", "devcontainer.json")
	if err := os.Rename(f, f+".orig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(edited, f); err != nil {
		t.Fatal(err)
	}
	refused("the trusted file swapped for a link to an edited copy", trusted)
}

// TestEscapeTrustPromptHidden: the trust prompt is where the user decides
// what a repository may run as them, so what it shows must be what runs.
// A hook whose second line is the payload, after a "#" that makes the
// first line look like a comment, and environment and mount values with a
// right-to-left override, a directional isolate, an escape sequence and a
// carriage return: the prompt (on a terminal, answered n) shows every one
// of them escaped, with nothing raw that a terminal reorders, hides or
// acts on, and the payload's line is visible as a second line of the
// hook; the one-line refusal without a terminal the same. Before the fix
// the prompt dropped the newline (the payload read as part of the comment:
// "echo setup # id > FILE") and passed U+202E and U+2066 through.
func TestEscapeTrustPromptHidden(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	proj := filepath.Join(e.home, "cloned-bidi")
	if err := os.MkdirAll(filepath.Join(proj, ".devcontainer"), 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(e.home, "hidden-hook-ran")
	body := `{"image": "debian",
	"postCreateCommand": "echo setup # \nid > ` + marker + `",
	"containerEnv": {"LANG": "C.UTF-8\u202e hs.live/krow/ =VNE_HSAB", "TERM": "xterm\u2066\u2069\u001b[8m\rTERM=dumb"}}`
	if err := os.WriteFile(filepath.Join(proj, ".devcontainer", "devcontainer.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without a terminal: one line, nothing raw, the payload named.
	r := e.run("shell", "--devcontainer="+proj, "--", "true")
	if r.code != 125 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `\nid > `) {
		t.Errorf("without a terminal: exit %d %q, want 125, one line showing the hook's second line", r.code, r.stderr)
	}
	noRawControls(t, "the refusal", strings.TrimSuffix(r.stderr, "\n"))
	// On a terminal.
	_, seen := e.answerPrompt(t, "n", "shell", "--devcontainer="+proj, "--", "true")
	prompt, _, _ := strings.Cut(strings.ReplaceAll(seen, "\r\n", "\n"), "[y/N]")
	noRawControls(t, "the prompt", prompt)
	for _, w := range []string{`echo setup # \nid > ` + marker, `\u202e`, `\u2066`, `\x1b[8m`, `\rTERM=dumb`} {
		if !strings.Contains(prompt, w) {
			t.Errorf("the prompt does not show %q:\n%s", w, prompt)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the hook ran although the answer was n")
	}
}

// TestEscapeDevcontainerNotesHidden: what devbox says it leaves out of a
// repository's devcontainer.json (a forwardPorts entry that is not a port
// number, a mount it cannot use) quoted the file's own text as it was,
// before the trust question: JSON carries U+202E, U+2066, C1 controls such
// as U+009B (CSI) and DEL unescaped, and they reached the terminal raw, as
// did an ignored field's name, whose \u001b escape decodes to ESC (found
// by a red-team pass). Each note must show them escaped, with a
// terminal and without one.
func TestEscapeDevcontainerNotesHidden(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	proj := filepath.Join(e.home, "cloned-notes")
	if err := os.MkdirAll(filepath.Join(proj, ".devcontainer"), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "{\"image\": \"debian\", \"postCreateCommand\": \"true\", \"x\\u001b]0;title\\u0007\": 1,\n" +
		"\"forwardPorts\": [\"db:5432\u202e\", \"\u2066x\u2069\u009b8m\x7f\"],\n" +
		"\"mounts\": [\"source=/\u202etmp,target=/x,type=volume\"]}"
	if err := os.WriteFile(filepath.Join(proj, ".devcontainer", "devcontainer.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run("shell", "--devcontainer="+proj, "--", "true")
	if !strings.Contains(r.stderr, "forwardPorts") || !strings.Contains(r.stderr, `\u202e`) {
		t.Errorf("without a terminal: the notes do not show the entries escaped:\n%s", r.stderr)
	}
	noRawControls(t, "without a terminal", r.stderr)
	_, seen := e.answerPrompt(t, "n", "shell", "--devcontainer="+proj, "--", "true")
	prompt, _, _ := strings.Cut(strings.ReplaceAll(seen, "\r\n", "\n"), "[y/N]")
	noRawControls(t, "on a terminal", prompt)
}

// noRawControls fails t when s, what devbox showed (what), carries a
// control character other than a newline, or a bidirectional formatting
// character, raw.
func noRawControls(t *testing.T, what, s string) {
	t.Helper()
	for _, r := range s {
		if r == '\u061c' || r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') ||
			(r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) {
			t.Errorf("%s carries %U raw: %q", what, r, s)
		}
	}
}
