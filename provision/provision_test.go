package provision

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func loc(t *testing.T, s string) *Locale {
	t.Helper()
	l, err := ParseLocale(s)
	if err != nil {
		t.Fatal(err)
	}
	return &l
}

// Each family gets its own commands and package names.
func TestCommands(t *testing.T) {
	all := func(t *testing.T) Needs {
		return Needs{Sudo: true, Less: true, PS: true, Shell: "zsh", Locale: loc(t, "de_DE.UTF-8")}
	}
	gen := []string{"/bin/sh", "-c", localeGen, "sh", "de_DE.UTF-8", "de_DE", "UTF-8"}
	aptOpts := []string{"-q", "-o", "Acquire::Retries=0", "-o", "Acquire::http::Timeout=20", "-o", "APT::Update::Error-Mode=any",
		"-o", "Dpkg::Use-Pty=0", "-o", "Dpkg::Options::=--force-unsafe-io"}
	cases := []struct {
		cmd   string
		needs Needs
		repo  string
		pkgs  []string
		steps [][]string
	}{
		{"apt-get", all(t), "", []string{"sudo", "locales", "less", "procps", "zsh"}, [][]string{
			{"dpkg", "--configure", "-a"},
			append(append([]string{"apt-get"}, aptOpts...), "update"),
			append(append([]string{"apt-get"}, aptOpts...), "install", "-y", "--no-install-recommends", "sudo", "locales", "less", "procps", "zsh"),
			gen,
		}},
		{"apt-get", Needs{Sudo: true}, "deb [trusted=yes] http://h:1/ ./", []string{"sudo"}, [][]string{
			{"/bin/sh", "-c", `mkdir -p "$1/parts" && printf '%s\n' "$2" >"$1/sources.list"`, "sh", aptProvisionDir, "deb [trusted=yes] http://h:1/ ./"},
			{"dpkg", "--configure", "-a"},
			append(append([]string{"apt-get"}, aptOpts...), "-o", "Dir::Etc::SourceList="+aptProvisionDir+"/sources.list", "-o", "Dir::Etc::SourceParts="+aptProvisionDir+"/parts", "update"),
			append(append([]string{"apt-get"}, aptOpts...), "-o", "Dir::Etc::SourceList="+aptProvisionDir+"/sources.list", "-o", "Dir::Etc::SourceParts="+aptProvisionDir+"/parts", "install", "-y", "--no-install-recommends", "sudo"),
			{"rm", "-rf", aptProvisionDir},
		}},
		{"dnf", all(t), "", []string{"sudo", "glibc-langpack-de", "less", "procps-ng", "zsh"}, [][]string{
			{"dnf", "install", "-y", "--setopt=install_weak_deps=False", "sudo", "glibc-langpack-de", "less", "procps-ng", "zsh"},
		}},
		{"dnf5", Needs{Sudo: true}, "http://h/repo", []string{"sudo"}, [][]string{
			{"dnf5", "install", "-y", "--setopt=install_weak_deps=False", "--disablerepo=*", "--repofrompath=devbox-provision,http://h/repo", "--setopt=devbox-provision.gpgcheck=0", "sudo"},
		}},
		{"microdnf", Needs{Sudo: true, PS: true}, "", []string{"sudo", "procps-ng"}, [][]string{
			{"microdnf", "install", "-y", "--nodocs", "--setopt=install_weak_deps=0", "sudo", "procps-ng"},
		}},
		{"apk", all(t), "http://h/alpine/main", []string{"sudo", "less", "procps-ng", "zsh"}, [][]string{
			{"apk", "add", "--no-progress", "--update-cache", "--repositories-file", "/dev/null", "--repository", "http://h/alpine/main", "--allow-untrusted", "sudo", "less", "procps-ng", "zsh"},
		}},
		{"pacman", all(t), "ignored", []string{"sudo", "less", "procps-ng", "zsh"}, [][]string{
			{"pacman", "-Sy", "--noconfirm", "--needed", "sudo", "less", "procps-ng", "zsh"},
			gen,
		}},
		{"zypper", all(t), "", []string{"sudo", "glibc-locale", "less", "procps", "zsh"}, [][]string{
			{"zypper", "--non-interactive", "install", "--no-recommends", "sudo", "glibc-locale", "less", "procps", "zsh"},
		}},
		{"xbps-install", all(t), "", []string{"sudo", "glibc-locales", "less", "procps-ng", "zsh"}, [][]string{
			{"xbps-install", "-Sy", "sudo", "glibc-locales", "less", "procps-ng", "zsh"},
			gen,
		}},
	}
	for _, c := range cases {
		p := Commands(c.cmd, c.needs, c.repo)
		if !reflect.DeepEqual(p.Packages, c.pkgs) {
			t.Errorf("%s: packages %q, want %q", c.cmd, p.Packages, c.pkgs)
		}
		var got [][]string
		for _, s := range p.Steps {
			got = append(got, s.Args)
		}
		if !reflect.DeepEqual(got, c.steps) {
			t.Errorf("%s (repo %q): steps\n got %q\nwant %q", c.cmd, c.repo, got, c.steps)
		}
	}
	if p := Commands("emerge", Needs{Sudo: true}, ""); len(p.Steps) != 0 {
		t.Errorf("unknown manager: %v", p)
	}
}

func TestParseLocale(t *testing.T) {
	cases := []struct {
		in             string
		ok, needed     bool
		source, normal string
	}{
		{"de_DE.UTF-8", true, true, "de_DE", "de_de.utf8"},
		{"en_US.utf8", true, true, "en_US", "en_us.utf8"},
		{"sr_RS.UTF-8@latin", true, true, "sr_RS@latin", "sr_rs.utf8@latin"},
		{"eo", true, true, "eo", "eo.utf8"},
		{"C.UTF-8", true, false, "C", "c.utf8"},
		{"POSIX", true, false, "POSIX", "posix.utf8"},
		{"", false, false, "", ""},
		{"de_DE.UTF-8; rm -rf /", false, false, "", ""},
		{"../../etc", false, false, "", ""},
		{"de_DE.UTF.8", false, false, "", ""},
		{"_DE", false, false, "", ""},
	}
	for _, c := range cases {
		l, err := ParseLocale(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		if l.Needed() != c.needed || l.Source() != c.source || l.normal() != c.normal {
			t.Errorf("%q: needed %v source %q normal %q; want %v %q %q", c.in, l.Needed(), l.Source(), l.normal(), c.needed, c.source, c.normal)
		}
	}
}

func TestStateCheck(t *testing.T) {
	good := State{Manager: "apt-get", Installed: []string{"sudo", "libc6-dev", "g++"}, Lang: "de_DE.UTF-8", Problem: "apt-get update failed (exit 100)"}
	if err := good.Check(); err != nil {
		t.Errorf("good state: %v", err)
	}
	for _, bad := range []State{
		{Manager: "curl|sh"},
		{Installed: []string{"sudo; rm -rf /"}},
		{Installed: []string{""}},
		{Problem: "two\nlines"},
		{Lang: "de DE"},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

// fakeBox answers the probe from what it "has" and records the commands;
// installing makes the packages present.
type fakeBox struct {
	has     map[string]bool
	fail    string // the first argument of a command that fails
	failLog string
	ran     [][]string
	noShell bool // /bin/sh missing: every command exits 127
}

func (b *fakeBox) Run(args, env []string, stdout, stderr *os.File) (int, error) {
	if b.noShell {
		return 127, nil
	}
	if len(args) > 2 && args[2] == probeScript() {
		out := "pm=" + b.pm() + "\n"
		for _, k := range []string{"sudo", "less", "ps", "shell", "locale"} {
			if b.has[k] {
				out += k + "=1\n"
			}
		}
		_, err := stdout.WriteString(out)
		return 0, err
	}
	b.ran = append(b.ran, args)
	if len(args) > 0 && (args[0] == b.fail || strings.Contains(strings.Join(args, " "), b.fail) && b.fail != "") {
		stderr.WriteString(b.failLog)
		return 100, nil
	}
	for _, a := range args {
		switch a {
		case "sudo", "less":
			b.has[a] = true
		case "procps":
			b.has["ps"] = true
		}
	}
	if args[0] == "/bin/sh" && len(args) > 4 && args[4] == "de_DE.UTF-8" {
		b.has["locale"] = true
	}
	return 0, nil
}

func (b *fakeBox) pm() string {
	if b.has["apt"] {
		return "apt-get"
	}
	return "none"
}

func runFake(t *testing.T, b *fakeBox, lang string) (*State, string) {
	t.Helper()
	log, err := os.Create(filepath.Join(t.TempDir(), "provision.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var out bytes.Buffer
	st, err := Run(Options{Box: "dev", Lang: lang, Shell: "/bin/bash", Log: log, Progress: &out, Runner: b, Hint: "devbox shell --reprovision dev"})
	if err != nil {
		t.Fatal(err)
	}
	return st, out.String()
}

func TestRun(t *testing.T) {
	// An image with apt that lacks everything gets it, and says so.
	b := &fakeBox{has: map[string]bool{"apt": true, "shell": true}}
	st, out := runFake(t, b, "de_DE.UTF-8")
	if st.Problem != "" || st.LangFallback || !reflect.DeepEqual(st.Installed, []string{"sudo", "locales", "less", "procps"}) || st.Manager != "apt-get" || st.Lang != "de_DE.UTF-8" {
		t.Errorf("state %+v", st)
	}
	if !strings.Contains(out, "installing sudo, locales, less, procps with apt-get (log: ") || !strings.Contains(out, "ready in") {
		t.Errorf("progress:\n%s", out)
	}
	// Nothing missing: nothing run, nothing said.
	b.ran = nil
	st, out = runFake(t, b, "de_DE.UTF-8")
	if len(b.ran) != 0 || out != "" || st.Installed != nil {
		t.Errorf("second run: ran %q, said %q", b.ran, out)
	}
	// Unreachable repositories: one line with the log and a hint, and
	// sessions fall back to C.UTF-8.
	b = &fakeBox{has: map[string]bool{"apt": true, "shell": true}, fail: "update",
		failLog: "W: Failed to fetch http://deb.debian.org/debian/dists/trixie/InRelease  Temporary failure resolving 'deb.debian.org'\n"}
	st, out = runFake(t, b, "de_DE.UTF-8")
	if !st.LangFallback || st.Installed != nil || !strings.Contains(st.Problem, "unreachable") {
		t.Errorf("state %+v", st)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var couldNot []string
	for _, l := range lines {
		if strings.Contains(l, "could not install") {
			couldNot = append(couldNot, l)
		}
	}
	if len(couldNot) != 1 || !strings.Contains(couldNot[0], "provision.log; hint: devbox shell --reprovision dev") {
		t.Errorf("progress:\n%s", out)
	}
	if !strings.Contains(out, "sessions get LANG=C.UTF-8") {
		t.Errorf("no fallback warning:\n%s", out)
	}
	// No shell at all (a distroless image): said once, not an error.
	st, out = runFake(t, &fakeBox{noShell: true}, "de_DE.UTF-8")
	if st.Problem == "" || !strings.Contains(out, "no working /bin/sh") || strings.Count(out, "\n") != 1 {
		t.Errorf("without /bin/sh: %+v, %q", st, out)
	}
	// No package manager: said once, nothing run.
	b = &fakeBox{has: map[string]bool{"shell": true, "less": true, "ps": true}}
	st, out = runFake(t, b, "C.UTF-8")
	if len(b.ran) != 0 || st.Problem == "" || strings.Count(out, "\n") != 1 || !strings.Contains(out, "no package manager") {
		t.Errorf("state %+v, progress %q", st, out)
	}
}

// sparseBox is an image whose /bin/sh answers the probe, then seeks its
// stdout (a file on the host) a terabyte ahead and writes one byte there.
type sparseBox struct{}

func (sparseBox) Run(args, env []string, stdout, stderr *os.File) (int, error) {
	stdout.WriteString("pm=none\nsudo=1\nless=1\nps=1\nshell=1\n")
	if _, err := stdout.Seek(1<<40, io.SeekStart); err != nil {
		return 0, err
	}
	_, err := stdout.Write([]byte{'\n'})
	return 0, err
}

// The probe's answer is read bounded: a box that makes it a sparse
// terabyte does not make devbox allocate one (a fatal out-of-memory).
func TestProbeOutputBounded(t *testing.T) {
	log, err := os.Create(filepath.Join(t.TempDir(), "provision.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	o := Options{Box: "dev", Shell: "/bin/bash", Log: log, Progress: io.Discard, Runner: sparseBox{}}
	h, err := o.probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Sudo || !h.Less || !h.PS || !h.Shell || h.Manager != "" {
		t.Errorf("probe = %+v", h)
	}
}
