package commit

import (
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParseChange(t *testing.T) {
	cases := []struct {
		in   string
		want Change
	}{
		{`CMD ["make", "test"]`, Change{Op: "CMD", Args: []string{"make", "test"}}},
		{`cmd make test`, Change{Op: "CMD", Args: []string{"/bin/sh", "-c", "make test"}}},
		{`CMD []`, Change{Op: "CMD", Args: []string{}}},
		{"  CMD\techo  hi  ", Change{Op: "CMD", Args: []string{"/bin/sh", "-c", "echo  hi"}}},
		{`ENTRYPOINT ["/usr/bin/tini", "--"]`, Change{Op: "ENTRYPOINT", Args: []string{"/usr/bin/tini", "--"}}},
		{`Entrypoint exec "$0"`, Change{Op: "ENTRYPOINT", Args: []string{"/bin/sh", "-c", `exec "$0"`}}},
		{`ENV A=1`, Change{Op: "ENV", Pairs: [][2]string{{"A", "1"}}}},
		{`ENV A=1 B="two words" C='it''s' D=a\ b E=`, Change{Op: "ENV", Pairs: [][2]string{{"A", "1"}, {"B", "two words"}, {"C", "its"}, {"D", "a b"}, {"E", ""}}}},
		{`ENV X="say \"hi\" \\o/"`, Change{Op: "ENV", Pairs: [][2]string{{"X", `say "hi" \o/`}}}},
		{`ENV GREETING hello   world`, Change{Op: "ENV", Pairs: [][2]string{{"GREETING", "hello world"}}}},
		{`ENV PATH=/opt/bin:$PATH`, Change{Op: "ENV", Pairs: [][2]string{{"PATH", "/opt/bin:$PATH"}}}},
		{`LABEL org.opencontainers.image.title="dev box" team=core`, Change{Op: "LABEL", Pairs: [][2]string{{"org.opencontainers.image.title", "dev box"}, {"team", "core"}}}},
		{`LABEL "my key"=v`, Change{Op: "LABEL", Pairs: [][2]string{{"my key", "v"}}}},
		{`USER 1000:1000`, Change{Op: "USER", Args: []string{"1000:1000"}}},
		{`user dev`, Change{Op: "USER", Args: []string{"dev"}}},
		{`WORKDIR /src`, Change{Op: "WORKDIR", Args: []string{"/src"}}},
		{`WORKDIR "/my src"`, Change{Op: "WORKDIR", Args: []string{"/my src"}}},
		// Tabs and newlines belong in scripts and values.
		{`CMD ["sh", "-c", "echo a\n\techo b"]`, Change{Op: "CMD", Args: []string{"sh", "-c", "echo a\n\techo b"}}},
		{`ENV MSG="a	b"`, Change{Op: "ENV", Pairs: [][2]string{{"MSG", "a\tb"}}}},
		{`LABEL note="héllo 日本"`, Change{Op: "LABEL", Pairs: [][2]string{{"note", "héllo 日本"}}}},
	}
	for _, c := range cases {
		got, err := ParseChange(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseChange(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, says string }{
		{`EXPOSE 80`, "supports CMD, ENTRYPOINT, ENV, LABEL, USER, WORKDIR"},
		{``, "supports"},
		{`CMD`, "no command"},
		{`CMD ["make", 1]`, "JSON array of strings"},
		{`CMD [make`, "JSON array of strings"},
		{`ENV`, "no KEY=VALUE"},
		{`ENV =x`, "is not KEY=VALUE"},
		{`ENV A`, `"A" has no value`},
		{`ENV A=1 B`, `"B" is not KEY=VALUE`},
		{`ENV "A B"=1`, "not a variable name"},
		{`ENV A="open`, "is not closed"},
		{`ENV A='open`, "is not closed"},
		{`ENV A=x\`, "ends with a backslash"},
		{`LABEL`, "no KEY=VALUE"},
		{`USER`, "one user"},
		{`USER a b`, "one user"},
		{`WORKDIR`, "one directory"},
		{`WORKDIR /a /b`, "one directory"},
		{"CMD echo \x00", "NUL"},
		// The exec form's JSON escapes put into the config what the
		// command line does not show.
		{`CMD ["a\u0000b"]`, "the command has a NUL"},
		{`ENTRYPOINT ["/bin/sh", "-c", "x\u0000"]`, "the command has a NUL"},
		{`CMD ["echo", "\u001b]0;PWNED\u0007"]`, "the command has a control character"},
		{`CMD ["echo", "\u009b2J"]`, "the command has a control character"},
		{`CMD ["echo", "a\rb"]`, "the command has a control character"},
		{`CMD ["\ud800"]`, ""}, // a lone surrogate decodes as U+FFFD: allowed, checked below
		{"CMD echo \x1b[31m", "the command has a control character"},
		{"CMD echo \xff\xfe", "not UTF-8"},
		{"ENV A=\x1b[2J", `the value of "A" has a control character`},
		{"ENV \x1b[2J=1", `the key "\x1b[2J" has a control character`},
		{"ENV \"A\x7f\"=1", "has a control character"},
		{"LABEL k=\x07", `the value of "k" has a control character`},
		{"LABEL \"k\nx\"=v", `the key "k\nx" has a control character`},
		{"USER dev\x1b", "the user has a control character"},
		{"WORKDIR /src\x1b[8m", "the directory has a control character"},
		{"WORKDIR \"/a\nb\"", "the directory has a control character"},
	}
	for _, c := range bad {
		if c.says == "" {
			continue
		}
		_, err := ParseChange(c.in)
		if err == nil || !strings.Contains(err.Error(), c.says) || !strings.HasPrefix(err.Error(), "invalid --change") {
			t.Errorf("ParseChange(%q): %v, want an error that says %q", c.in, err, c.says)
		}
		if err != nil && strings.ContainsFunc(err.Error(), func(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }) {
			t.Errorf("ParseChange(%q): the error %q carries a control character", c.in, err)
		}
	}
	for _, c := range []struct {
		flag, v string
		ok      bool
	}{
		{"--author", "Ann <ann@example.com>", true}, {"--message", "two\nlines\tand a tab", true},
		{"--author", "Ann\nEvil", false}, {"--author", "a\x00b", false}, {"--message", "\x1b]0;x\x07", false},
		{"--message", "\u009b2J", false}, {"--message", "\xff", false},
	} {
		if err := CheckText(c.flag, c.v); (err == nil) != c.ok {
			t.Errorf("CheckText(%s, %q) = %v, want ok %v", c.flag, c.v, err, c.ok)
		}
	}
	if got, err := ParseChange(`CMD ["\ud800"]`); err != nil || got.Args[0] != "\ufffd" {
		t.Errorf("a lone surrogate: %q, %v", got.Args, err)
	}
}

func TestApplyChanges(t *testing.T) {
	base := v1.Config{Cmd: []string{"bash"}, Env: []string{"PATH=/bin", "A=0"}, WorkingDir: "/work", Labels: map[string]string{"old": "1"}}
	cases := []struct {
		name    string
		changes []string
		want    v1.Config
	}{
		{"nothing", nil, base},
		{"cmd", []string{`CMD ["make"]`}, v1.Config{Cmd: []string{"make"}, Env: base.Env, WorkingDir: "/work", Labels: base.Labels}},
		{"entrypoint clears the image's cmd", []string{`ENTRYPOINT ["tini"]`},
			v1.Config{Entrypoint: []string{"tini"}, Env: base.Env, WorkingDir: "/work", Labels: base.Labels}},
		{"entrypoint and cmd, in either order", []string{`CMD ["x"]`, `ENTRYPOINT ["tini"]`},
			v1.Config{Entrypoint: []string{"tini"}, Cmd: []string{"x"}, Env: base.Env, WorkingDir: "/work", Labels: base.Labels}},
		{"env replaces in place and appends", []string{`ENV A=1 B=2`, `ENV B=3`},
			v1.Config{Cmd: base.Cmd, Env: []string{"PATH=/bin", "A=1", "B=3"}, WorkingDir: "/work", Labels: base.Labels}},
		{"labels", []string{`LABEL team=core old=2`},
			v1.Config{Cmd: base.Cmd, Env: base.Env, WorkingDir: "/work", Labels: map[string]string{"old": "2", "team": "core"}}},
		{"relative workdir", []string{`WORKDIR src/../app`},
			v1.Config{Cmd: base.Cmd, Env: base.Env, WorkingDir: "/work/app", Labels: base.Labels}},
		{"absolute workdir, user", []string{`WORKDIR /srv/`, `USER 1000:1000`},
			v1.Config{Cmd: base.Cmd, Env: base.Env, WorkingDir: "/srv", User: "1000:1000", Labels: base.Labels}},
	}
	for _, c := range cases {
		cfg := base
		cfg.Env = append([]string{}, base.Env...)
		cfg.Labels = map[string]string{"old": "1"}
		var chs []Change
		for _, s := range c.changes {
			ch, err := ParseChange(s)
			if err != nil {
				t.Fatal(err)
			}
			chs = append(chs, ch)
		}
		ApplyChanges(&cfg, chs)
		if !reflect.DeepEqual(cfg, c.want) {
			t.Errorf("%s: got %+v\nwant %+v", c.name, cfg, c.want)
		}
	}
	// The base's slices are not written through.
	cfg := v1.Config{Env: []string{"A=0"}}
	env := cfg.Env
	ApplyChanges(&cfg, []Change{{Op: "ENV", Pairs: [][2]string{{"A", "1"}}}})
	if env[0] != "A=0" {
		t.Error("ApplyChanges wrote into the caller's Env")
	}
}
