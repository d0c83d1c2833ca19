package provision

import (
	"fmt"
	"path"
	"strings"
)

// family is one package manager: how the probe finds it, what its packages
// are called and the commands it gets.
type family struct {
	cmd     string // the program the probe looks for
	repoKey string // its key in [provision.repos] ("": no repository override)
	ps      string // the package with ps
	// locale lists the packages of a locale (nil: none needed); gen says
	// whether it is compiled with localedef afterwards.
	locale func(l Locale) []string
	gen    bool
}

// families is the one table of package managers, in the probe's order of
// preference (an image with both dnf and microdnf uses dnf).
var families = []family{
	{cmd: "apt-get", repoKey: "apt", ps: "procps", locale: pkgs("locales"), gen: true},
	{cmd: "dnf5", repoKey: "dnf", ps: "procps-ng", locale: langpack},
	{cmd: "dnf", repoKey: "dnf", ps: "procps-ng", locale: langpack},
	{cmd: "microdnf", repoKey: "dnf", ps: "procps-ng", locale: langpack},
	{cmd: "yum", repoKey: "dnf", ps: "procps-ng", locale: langpack},
	{cmd: "apk", repoKey: "apk", ps: "procps-ng"}, // musl: no locale data
	{cmd: "pacman", ps: "procps-ng", locale: pkgs(), gen: true},
	{cmd: "zypper", ps: "procps", locale: pkgs("glibc-locale")},
	{cmd: "xbps-install", ps: "procps-ng", locale: pkgs("glibc-locales"), gen: true},
}

// RepoKeys are the keys [provision.repos] accepts.
var RepoKeys = []string{"apt", "dnf", "apk"}

// probeOrder lists the package managers for the probe, in order.
func probeOrder() string {
	var s []string
	for _, f := range families {
		s = append(s, f.cmd)
	}
	return strings.Join(s, " ")
}

func familyOf(cmd string) *family {
	for i := range families {
		if families[i].cmd == cmd {
			return &families[i]
		}
	}
	return nil
}

func pkgs(p ...string) func(Locale) []string { return func(Locale) []string { return p } }

// langpack is Fedora's per-language locale package.
func langpack(l Locale) []string { return []string{"glibc-langpack-" + l.Language()} }

// shellPackages are the login shells provisioning installs when the
// user's is missing in the box, by program name.
var shellPackages = map[string]string{"bash": "bash", "zsh": "zsh", "fish": "fish", "dash": "dash", "tcsh": "tcsh", "mksh": "mksh"}

// Needs is what a box lacks.
type Needs struct {
	Sudo, Less, PS bool
	Shell          string  // the login shell's package ("" when present or unknown)
	Locale         *Locale // the locale to install (nil: none)
	// Extra are packages asked for by name (a box file's packages), the
	// same in every family.
	Extra []string
}

// NeedsOf is what a box that has h lacks for the locale want (nil: none)
// and the login shell.
func NeedsOf(h Have, want *Locale, shell string) Needs {
	n := Needs{Sudo: !h.Sudo, Less: !h.Less, PS: !h.PS}
	if !h.Shell {
		n.Shell = shellPackages[path.Base(shell)]
	}
	if want != nil && !h.Locale {
		n.Locale = want
	}
	return n
}

// Empty reports whether nothing is missing.
func (n Needs) Empty() bool {
	return !n.Sudo && !n.Less && !n.PS && n.Shell == "" && n.Locale == nil && len(n.Extra) == 0
}

// Names lists what is missing as packages of manager cmd ("": generic
// names, for messages).
func (n Needs) Names(cmd string) []string {
	f := familyOf(cmd)
	var out []string
	add := func(p ...string) {
		for _, x := range p {
			if x != "" && !contains(out, x) {
				out = append(out, x)
			}
		}
	}
	if n.Sudo {
		add("sudo")
	}
	if n.Locale != nil {
		switch {
		case f == nil:
			add("locale " + n.Locale.Name)
		case f.locale != nil:
			add(f.locale(*n.Locale)...)
		}
	}
	if n.Less {
		add("less")
	}
	if n.PS {
		if f == nil {
			add("ps")
		} else {
			add(f.ps)
		}
	}
	add(n.Shell)
	add(n.Extra...)
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Step is one command of a plan.
type Step struct {
	Label string
	Args  []string
	Env   []string
	// Always steps run even after a failed one (clean-up); Quiet ones
	// are not announced.
	Always, Quiet bool
}

// Plan is the commands that install what a box lacks.
type Plan struct {
	Packages []string
	Steps    []Step
}

// aptProvisionDir holds the sources of a [provision.repos] apt override
// while provisioning runs; the image's own sources are not touched.
const aptProvisionDir = "/var/lib/devbox-provision"

// Commands returns the plan for manager cmd: install n's packages, from
// repo when it is set ([provision.repos], for apt a sources.list line,
// for dnf and apk a repository URL).
func Commands(cmd string, n Needs, repo string) Plan {
	f := familyOf(cmd)
	if f == nil {
		return Plan{}
	}
	p := Plan{Packages: n.Names(cmd)}
	if f.repoKey == "" {
		repo = ""
	}
	install := func(args ...string) {
		p.Steps = append(p.Steps, Step{Label: "installing " + strings.Join(p.Packages, " "), Args: append(args, p.Packages...)})
	}
	switch f.repoKey {
	case "apt":
		opts := []string{"-q", "-o", "Acquire::Retries=0", "-o", "Acquire::http::Timeout=20", "-o", "APT::Update::Error-Mode=any", "-o", "Dpkg::Use-Pty=0",
			// A box's files need no fsync per file: a killed run is
			// finished by dpkg --configure -a next time.
			"-o", "Dpkg::Options::=--force-unsafe-io"}
		if repo != "" {
			opts = append(opts, "-o", "Dir::Etc::SourceList="+aptProvisionDir+"/sources.list", "-o", "Dir::Etc::SourceParts="+aptProvisionDir+"/parts")
			p.Steps = append(p.Steps, Step{Label: "using the repository of [provision.repos] apt", Quiet: true,
				Args: []string{"/bin/sh", "-c", `mkdir -p "$1/parts" && printf '%s\n' "$2" >"$1/sources.list"`, "sh", aptProvisionDir, repo}})
		}
		// A provisioning killed half-way left packages unconfigured.
		p.Steps = append(p.Steps, Step{Label: "dpkg --configure -a", Quiet: true, Args: []string{"dpkg", "--configure", "-a"}})
		p.Steps = append(p.Steps, Step{Label: "apt-get update", Args: append(append([]string{"apt-get"}, opts...), "update")})
		install(append(append([]string{"apt-get"}, opts...), "install", "-y", "--no-install-recommends")...)
	case "dnf":
		args := []string{cmd, "install", "-y"}
		if cmd == "microdnf" {
			args = append(args, "--nodocs", "--setopt=install_weak_deps=0")
		} else {
			args = append(args, "--setopt=install_weak_deps=False")
		}
		if repo != "" {
			args = append(args, "--disablerepo=*", "--repofrompath=devbox-provision,"+repo, "--setopt=devbox-provision.gpgcheck=0")
		}
		install(args...)
	case "apk":
		args := []string{"apk", "add", "--no-progress", "--update-cache"}
		if repo != "" {
			args = append(args, "--repositories-file", "/dev/null", "--repository", repo, "--allow-untrusted")
		}
		install(args...)
	default:
		switch cmd {
		case "pacman":
			install("pacman", "-Sy", "--noconfirm", "--needed")
		case "zypper":
			install("zypper", "--non-interactive", "install", "--no-recommends")
		case "xbps-install":
			install("xbps-install", "-Sy")
		}
	}
	if n.Locale != nil && f.gen {
		l := *n.Locale
		p.Steps = append(p.Steps, Step{Label: "generating the locale " + l.Name,
			Args: []string{"/bin/sh", "-c", localeGen, "sh", l.Name, l.Source(), l.Charset}})
	}
	if repo != "" && f.repoKey == "apt" {
		p.Steps = append(p.Steps, Step{Label: "removing the provisioning sources", Always: true, Quiet: true,
			Args: []string{"rm", "-rf", aptProvisionDir}})
	}
	return p
}

// localeGen compiles locale $1 from source $2 and charset $3, and lists it
// in /etc/locale.gen where the distribution keeps that list (Debian, Arch),
// so that its own locale-gen keeps it.
const localeGen = `if [ -f /etc/locale.gen ] && ! grep -qx "$1 $3" /etc/locale.gen; then echo "$1 $3" >>/etc/locale.gen; fi
localedef -i "$2" -c -f "$3" "$1" || [ $? = 1 ]`

// Locale is a parsed LANG value: language[_territory][.charset][@modifier].
type Locale struct {
	Name                               string // as given
	Lang, Territory, Charset, Modifier string
}

// ParseLocale parses a LANG value. C, POSIX and C.UTF-8 parse (Needed is
// false for them); anything with characters outside letters, digits and
// "_.-@" is refused.
func ParseLocale(s string) (Locale, error) {
	if s == "" || len(s) > 64 {
		return Locale{}, fmt.Errorf("locale %q is not a locale name", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.-@", c)) {
			return Locale{}, fmt.Errorf("locale %q is not a locale name", s)
		}
	}
	l := Locale{Name: s}
	rest := s
	rest, l.Modifier, _ = strings.Cut(rest, "@")
	rest, l.Charset, _ = strings.Cut(rest, ".")
	l.Lang, l.Territory, _ = strings.Cut(rest, "_")
	if l.Lang == "" || strings.ContainsAny(l.Lang+l.Territory+l.Charset+l.Modifier, ".@") {
		return Locale{}, fmt.Errorf("locale %q is not a locale name", s)
	}
	if l.Charset == "" {
		l.Charset = "UTF-8"
	}
	return l, nil
}

// Needed reports whether the locale must be installed: C and POSIX are in
// every C library, and so is C.UTF-8 in those of current distributions.
func (l Locale) Needed() bool { return l.Lang != "C" && l.Lang != "POSIX" }

// Language is the language part (Fedora names its langpacks after it).
func (l Locale) Language() string { return l.Lang }

// Source is the locale's definition localedef -i takes.
func (l Locale) Source() string {
	s := l.Lang
	if l.Territory != "" {
		s += "_" + l.Territory
	}
	if l.Modifier != "" {
		s += "@" + l.Modifier
	}
	return s
}

// normal is the name as `locale -a` lists it, lower-cased: the charset
// without dashes (glibc's normalisation).
func (l Locale) normal() string {
	s := l.Source()
	if l.Charset != "" {
		cs := strings.ToLower(strings.ReplaceAll(l.Charset, "-", ""))
		base, mod, hasMod := strings.Cut(s, "@")
		s = base + "." + cs
		if hasMod {
			s += "@" + mod
		}
	}
	return strings.ToLower(s)
}

func validPackage(p string) bool {
	if p == "" || len(p) > 128 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+-._", c)) {
			return false
		}
	}
	return true
}
