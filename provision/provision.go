// Package provision sets a dev box up on its first start: as the box's
// root, with the image's own package manager, it installs what a developer
// box needs when the image lacks it — sudo, the locale the user's LANG
// names, less, ps and the user's login shell. It knows the package manager
// families (apt, dnf/microdnf/yum, apk, pacman, zypper, xbps) and the
// commands each gets; it runs them through a Runner (the box's agent), with
// their output in a log file, and returns a State for the box's record.
// It never fails a shell: what cannot be installed is one line of output
// and a note in the State.
package provision

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Config is the [provision] table of devbox's configuration file.
type Config struct {
	// Auto provisions new dev boxes at their first start (default true).
	Auto *bool `toml:"auto"`
	// Repos replace the image's package repositories while provisioning,
	// by family: apt (a sources.list line), dnf and apk (a URL).
	Repos map[string]string `toml:"repos"`
}

// Runner runs a command as root in the box, with stdin on /dev/null and
// stdout and stderr on the given files, and returns its exit code.
type Runner interface {
	Run(args, env []string, stdout, stderr *os.File) (int, error)
}

// State is what provisioning did, kept in the box's record: its presence
// means "done" (devbox shell --reprovision runs it again).
type State struct {
	Time time.Time `json:"time"`
	// Manager is the package manager found in the image ("" when none).
	Manager string `json:"manager,omitempty"`
	// Installed are the packages installed.
	Installed []string `json:"installed,omitempty"`
	// Problem says, in one line, why packages could not be installed.
	Problem string `json:"problem,omitempty"`
	// Lang is the LANG the box was provisioned for; LangFallback says the
	// box has no such locale, so its sessions get C.UTF-8 for it.
	Lang         string `json:"lang,omitempty"`
	LangFallback bool   `json:"langFallback,omitempty"`
}

// Check reports the first value of s that devbox would not have written.
func (s *State) Check() error {
	if s.Manager != "" && familyOf(s.Manager) == nil {
		return fmt.Errorf("provision.manager %q is not a package manager devbox knows", s.Manager)
	}
	for _, p := range s.Installed {
		if !validPackage(p) {
			return fmt.Errorf("provision.installed entry %q is not a package name", p)
		}
	}
	if len(s.Problem) > 1024 || strings.ContainsFunc(s.Problem, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errors.New("provision.problem is not one line of text")
	}
	if s.Lang != "" {
		if _, err := ParseLocale(s.Lang); err != nil {
			return fmt.Errorf("provision.lang: %v", err)
		}
	}
	return nil
}

// FallbackLang is what a session gets instead of a LANG the box lacks.
const FallbackLang = "C.UTF-8"

// Options say what to provision and where to report.
type Options struct {
	Box      string // the box's name, for messages
	Lang     string // the caller's LANG
	Shell    string // the user's login shell (a path)
	Repos    map[string]string
	Log      *os.File  // the package managers' output
	Progress io.Writer // one line per step (stderr)
	Runner   Runner
	// Hint is the command that runs provisioning again.
	Hint string
}

// probeScript prints what the box has: its package manager, the tools a
// developer box needs, whether the login shell ($1) exists and whether the
// locale $2 (normalised: lower case, "utf8") is installed; musl boxes need
// no locale data.
func probeScript() string {
	return `pm=none
for c in ` + probeOrder() + `; do
	if command -v "$c" >/dev/null 2>&1; then pm=$c; break; fi
done
echo "pm=$pm"
for c in sudo less ps; do command -v "$c" >/dev/null 2>&1 && echo "$c=1"; done
[ -z "$1" ] || [ -x "$1" ] && echo shell=1
if [ -n "$2" ]; then
	if ls /lib/ld-musl-* >/dev/null 2>&1; then echo locale=1
	elif locale -a 2>/dev/null | tr 'A-Z' 'a-z' | sed 's/utf-8/utf8/' | grep -qx "$2"; then echo locale=1; fi
fi
exit 0
`
}

// Have is what the probe found.
type Have struct {
	Manager               string
	Sudo, Less, PS, Shell bool
	Locale                bool
}

func parseProbe(out string) Have {
	h := Have{}
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "pm":
			if familyOf(v) != nil {
				h.Manager = v
			}
		case "sudo":
			h.Sudo = v == "1"
		case "less":
			h.Less = v == "1"
		case "ps":
			h.PS = v == "1"
		case "shell":
			h.Shell = v == "1"
		case "locale":
			h.Locale = v == "1"
		}
	}
	return h
}

var baseEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LC_ALL=C", "TERM=dumb", "DEBIAN_FRONTEND=noninteractive",
}

func (o *Options) probe(loc *Locale) (Have, error) {
	f, err := os.CreateTemp("", "devbox-probe-*")
	if err != nil {
		return Have{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	want := ""
	if loc != nil {
		want = loc.normal()
	}
	code, err := o.Runner.Run([]string{"/bin/sh", "-c", probeScript(), "sh", o.Shell, want}, baseEnv, f, o.Log)
	if err != nil {
		return Have{}, err
	}
	if code != 0 {
		return Have{}, &noShellError{code}
	}
	// The box wrote this file (its /bin/sh may seek it a terabyte ahead):
	// only its beginning is read, from the descriptor.
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, maxProbeOutput), maxProbeOutput))
	if err != nil {
		return Have{}, err
	}
	return parseProbe(string(b)), nil
}

// maxProbeOutput bounds what is read of the probe's answer (a few lines).
const maxProbeOutput = 64 << 10

// noShellError is a probe that could not run: the image has no /bin/sh.
type noShellError struct{ code int }

func (e *noShellError) Error() string {
	return fmt.Sprintf("the image has no working /bin/sh (exit %d)", e.code)
}

// Run provisions the box: probe, install what is missing, check again.
// The error is only for a box that cannot be asked (its agent failed); a
// package manager's failure is State.Problem, said on Progress.
func Run(o Options) (*State, error) {
	start := time.Now()
	st := &State{Time: start.UTC()}
	say := func(format string, a ...any) {
		fmt.Fprintf(o.Progress, "devbox: box %s: %s\n", o.Box, fmt.Sprintf(format, a...))
	}
	loc, err := ParseLocale(o.Lang)
	var want *Locale
	if err == nil && loc.Needed() {
		want = &loc
		st.Lang = loc.Name
	}
	have, err := o.probe(want)
	var ns *noShellError
	if errors.As(err, &ns) {
		// Distroless images: nothing devbox could run; said once.
		st.Problem = ns.Error()
		say("%s: nothing installed (the box works without)", st.Problem)
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.Manager = have.Manager
	n := NeedsOf(have, want, o.Shell)
	if n.Empty() {
		return st, nil
	}
	if have.Manager == "" {
		st.Problem = "the image has no package manager devbox knows"
		say("%s: not installing %s (the box works without)", st.Problem, strings.Join(n.Names(""), ", "))
		st.LangFallback = want != nil && n.Locale != nil
		if st.LangFallback {
			say("warning: no locale %s in the box; its sessions get LANG=%s", want.Name, FallbackLang)
		}
		return st, nil
	}
	plan := Commands(have.Manager, n, o.Repos[familyOf(have.Manager).repoKey])
	say("first start: installing %s with %s (log: %s)", strings.Join(plan.Packages, ", "), have.Manager, o.Log.Name())
	failed, err := o.runPlan(plan, say)
	if err != nil {
		return nil, err
	}
	if failed != "" {
		st.Problem = failed
		hint := o.Hint + " once the network is back"
		if familyOf(have.Manager).repoKey != "" {
			hint += fmt.Sprintf(", or set [provision.repos] %s in config.toml", familyOf(have.Manager).repoKey)
		}
		say("could not install %s: %s (log: %s; hint: %s); the box works without them", strings.Join(plan.Packages, ", "), failed, o.Log.Name(), hint)
	} else {
		st.Installed = plan.Packages
	}
	if want != nil {
		after, err := o.probe(want)
		if err != nil {
			return nil, err
		}
		if !after.Locale {
			st.LangFallback = true
			say("warning: no locale %s in the box; its sessions get LANG=%s", want.Name, FallbackLang)
		}
	}
	if failed == "" {
		say("ready in %.1fs", time.Since(start).Seconds())
	}
	return st, nil
}

// unreachable reports whether a package manager's log says it could not
// reach its repositories.
func unreachable(log string) bool {
	f, err := os.Open(log)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		for _, s := range []string{"Temporary failure resolving", "Could not resolve", "Could not connect", "Failed to fetch",
			"Unable to connect", "Cannot download repomd", "Curl error", "could not resolve host", "network error",
			"failed to retrieve", "Connection refused", "Network is unreachable", "Could not resolve host"} {
			if strings.Contains(l, s) {
				return true
			}
		}
	}
	return false
}

// runPlan runs plan's steps and returns why the first that failed did
// ("" when none did); the error is only for a box that cannot be asked.
func (o *Options) runPlan(plan Plan, say func(string, ...any)) (string, error) {
	failed := ""
	shown, total := 0, 0
	for _, s := range plan.Steps {
		if !s.Quiet {
			total++
		}
	}
	for _, s := range plan.Steps {
		if failed != "" && !s.Always {
			continue
		}
		fmt.Fprintf(o.Log, "\n### devbox %s: %s\n", time.Now().Format("15:04:05.000"), strings.Join(s.Args, " "))
		if !s.Quiet {
			shown++
			say("[%d/%d] %s", shown, total, s.Label)
		}
		code, err := o.Runner.Run(s.Args, append(baseEnv, s.Env...), o.Log, o.Log)
		if err != nil {
			return "", err
		}
		if code != 0 && failed == "" && !s.Always {
			failed = fmt.Sprintf("%s failed (exit %d)", s.Label, code)
			if unreachable(o.Log.Name()) {
				failed += ": the package repositories are unreachable"
			}
		}
	}
	return failed, nil
}

// CheckPackages accepts package names: letters, digits and + - . _, not
// starting with '-' (which a package manager would take for an option).
func CheckPackages(pkgs []string) error {
	for _, p := range pkgs {
		if !validPackage(p) || p[0] == '-' {
			return fmt.Errorf("%q is not a package name", p)
		}
	}
	return nil
}

// Install installs packages, by name, with the box's own package manager
// (devbox assemble): unlike Run, a failure is an error, since the box file
// asked for them.
func Install(o Options, packages []string) error {
	if err := CheckPackages(packages); err != nil {
		return err
	}
	if len(packages) == 0 {
		return nil
	}
	say := func(format string, a ...any) {
		fmt.Fprintf(o.Progress, "devbox: box %s: %s\n", o.Box, fmt.Sprintf(format, a...))
	}
	have, err := o.probe(nil)
	if err != nil {
		return err
	}
	if have.Manager == "" {
		return fmt.Errorf("box %s: the image has no package manager devbox knows: cannot install %s", o.Box, strings.Join(packages, ", "))
	}
	plan := Commands(have.Manager, Needs{Extra: packages}, o.Repos[familyOf(have.Manager).repoKey])
	say("installing %s with %s (log: %s)", strings.Join(plan.Packages, ", "), have.Manager, o.Log.Name())
	failed, err := o.runPlan(plan, say)
	if err != nil {
		return err
	}
	if failed != "" {
		return fmt.Errorf("box %s: %s (log: %s)", o.Box, failed, o.Log.Name())
	}
	return nil
}
