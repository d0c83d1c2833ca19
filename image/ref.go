package image

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"

	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/google/go-containerregistry/pkg/name"
)

// Registries is the registry part of the user's configuration.
type Registries struct {
	// Mirrors maps a registry host ("docker.io") to mirrors tried first, in
	// order. The original registry is tried last.
	Mirrors map[string][]string
	// Insecure lists registries reached over plain HTTP (and without TLS
	// verification when they do speak TLS).
	Insecure []string
}

// Resolve returns the fully qualified reference for s: an alias from table,
// or a Docker-style reference ("ubuntu" → docker.io/library/ubuntu:latest).
func Resolve(s string, table alias.Table) (name.Reference, string, error) {
	if a, ok := table.Lookup(s); ok {
		ref, err := name.ParseReference(a.Ref)
		if err != nil {
			return nil, "", fmt.Errorf("alias %q points at an invalid reference %q: %w (hint: fix it in your devbox config)", s, a.Ref, err)
		}
		return ref, s, nil
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return nil, "", fmt.Errorf("invalid image reference %q: it contains spaces or control characters (hint: references look like ubuntu, ubuntu:24.04, quay.io/org/repo:tag or repo@sha256:…)", s)
	}
	if strings.Contains(s, "://") {
		return nil, "", fmt.Errorf("invalid image reference %q: write it without a scheme, e.g. registry.example.com/repo:tag (hint: list plain-HTTP registries under [registries] insecure in the config)", s)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		hint := "references look like ubuntu, ubuntu:24.04, quay.io/org/repo:tag or repo@sha256:…"
		if c := table.Closest(strings.SplitN(s, ":", 2)[0]); c != "" {
			hint = fmt.Sprintf("did you mean the alias %q?", c)
		}
		return nil, "", fmt.Errorf("invalid image reference %q: %w (hint: %s)", s, err, hint)
	}
	return ref, "", nil
}

// FullName renders ref the way users read it: docker.io instead of
// index.docker.io, the tag or digest always present.
func FullName(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	s := reg + "/" + ref.Context().RepositoryStr()
	switch r := ref.(type) {
	case name.Tag:
		s += ":" + r.TagStr()
	case name.Digest:
		s += "@" + r.DigestStr()
	}
	return s
}

// registryKeys are the names a registry may be configured under.
func registryKeys(reg string) []string {
	if reg == name.DefaultRegistry || reg == "docker.io" || reg == "registry-1.docker.io" {
		return []string{"docker.io", "index.docker.io", "registry-1.docker.io"}
	}
	return []string{reg}
}

// Candidates returns the references to try for ref, mirrors first.
func (r Registries) Candidates(ref name.Reference) ([]name.Reference, error) {
	var out []name.Reference
	for _, k := range registryKeys(ref.Context().RegistryStr()) {
		for _, m := range r.Mirrors[k] {
			m = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(m, "https://"), "http://"), "/")
			host, prefix, _ := strings.Cut(m, "/")
			repo := ref.Context().RepositoryStr()
			if prefix != "" {
				repo = prefix + "/" + repo
			}
			s := host + "/" + repo
			switch t := ref.(type) {
			case name.Tag:
				s += ":" + t.TagStr()
			case name.Digest:
				s += "@" + t.DigestStr()
			}
			mr, err := name.ParseReference(s, r.nameOpts(host)...)
			if err != nil {
				return nil, fmt.Errorf("mirror %q for %s: %w (hint: fix [registries.mirrors] in your devbox config)", m, k, err)
			}
			out = append(out, mr)
		}
	}
	orig, err := name.ParseReference(ref.String(), r.nameOpts(ref.Context().RegistryStr())...)
	if err != nil {
		return nil, err
	}
	return append(out, orig), nil
}

// IsInsecure reports whether host is configured for plain HTTP.
func (r Registries) IsInsecure(host string) bool {
	for _, h := range r.Insecure {
		if strings.EqualFold(strings.TrimSpace(h), host) {
			return true
		}
	}
	return false
}

func (r Registries) nameOpts(host string) []name.Option {
	if r.IsInsecure(host) || isLoopback(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

func isLoopback(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ErrNotFound matches a registry's answer that an image does not exist (or,
// as Docker Hub tells anonymous users, that access to it is denied).
var ErrNotFound = errors.New("image not found")

type notFound struct{ error }

func (notFound) Is(target error) bool { return target == ErrNotFound }
func (e notFound) Unwrap() error      { return e.error }

// SuggestAlias improves an "image not found" error (from a registry or
// from the store) for a bare single word that is a near miss of an alias,
// e.g. debain → debian: the hint names the alias. Other errors are
// returned unchanged.
func SuggestAlias(input string, table alias.Table, err error) error {
	if err == nil || (!errors.Is(err, ErrNotFound) && !errors.Is(err, store.ErrNotFound)) {
		return err
	}
	if input == "" || strings.ContainsAny(input, "/:@.") {
		return err
	}
	if _, ok := table.Lookup(input); ok {
		return err
	}
	c := table.Closest(input)
	if c == "" {
		return err
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, " (hint: "); i >= 0 && strings.HasSuffix(msg, ")") {
		msg = msg[:i]
	}
	return &suggested{msg: fmt.Sprintf("%s (hint: did you mean the alias %q? devbox aliases lists them)", msg, c), err: err}
}

type suggested struct {
	msg string
	err error
}

func (e *suggested) Error() string { return e.msg }
func (e *suggested) Unwrap() error { return e.err }

// LocalName is the full reference under which devbox commit and load
// store an image named s: a name without a registry goes under
// localhost/, as podman does (never docker.io, where it would read as an
// image of Docker Hub's).
func LocalName(s string) (string, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) || strings.Contains(s, "://") {
		return "", fmt.Errorf("invalid image name %q (hint: names look like dev, dev:1 or registry.example.com/team/dev:1)", s)
	}
	ref, err := name.ParseReference(s, name.WithDefaultRegistry("localhost"))
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w (hint: names look like dev, dev:1 or registry.example.com/team/dev:1)", s, err)
	}
	if _, ok := ref.(name.Digest); ok {
		return "", fmt.Errorf("invalid image name %q: a digest names content, not a new image (hint: give a tag, e.g. dev:1)", s)
	}
	if err := CheckRepository(ref); err != nil {
		return "", err
	}
	return FullName(ref), nil
}

// pathComponent reports whether c is one element of a repository path as
// the distribution spec writes it, [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*:
// lower-case letters and digits, separated by one '.', one or two '_', or
// any number of '-'.
func pathComponent(c string) bool {
	alnum := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }
	for i := 0; i < len(c); {
		if !alnum(c[i]) {
			return false
		}
		for i < len(c) && alnum(c[i]) {
			i++
		}
		if i == len(c) {
			return true
		}
		switch {
		case c[i] == '.':
			i++
		case strings.HasPrefix(c[i:], "__"):
			i += 2
		case c[i] == '_':
			i++
		case c[i] == '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
		if i == len(c) {
			return false // a separator at the end
		}
	}
	return c != ""
}

// CheckRepository refuses a reference whose repository path is not the
// distribution spec's: go-containerregistry checks only its characters,
// so "team/../other" or "a//b" would reach a registry as they are (a
// push sends the path in the URL, where ".." means another repository to
// a proxy or a registry that cleans paths).
func CheckRepository(ref name.Reference) error {
	if reg := ref.Context().RegistryStr(); !strings.HasPrefix(reg, "[") {
		host := reg
		if h, _, err := net.SplitHostPort(reg); err == nil {
			host = h
		}
		for _, l := range strings.Split(host, ".") {
			if l == "" || strings.Trim(strings.ToLower(l), "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				return fmt.Errorf("invalid image name %q: its registry %q is not a host name (hint: names look like dev, dev:1 or registry.example.com/team/dev:1)", ref.String(), reg)
			}
		}
	}
	repo := ref.Context().RepositoryStr()
	for _, c := range strings.Split(repo, "/") {
		if pathComponent(c) {
			continue
		}
		what := fmt.Sprintf("its path element %q is not letters and digits joined by '.', '_' or '-'", c)
		switch {
		case c == "":
			what = "its path has an empty element"
		case c == "." || c == "..":
			what = fmt.Sprintf("its path has a %q element", c)
		}
		return fmt.Errorf("invalid image name %q: %s (hint: names look like dev, dev:1 or registry.example.com/team/dev:1)", ref.String(), what)
	}
	return nil
}

// Origin is ref as devbox pushes to it: the registry itself (mirrors
// serve pulls only), over plain HTTP when it is listed as insecure or on
// the loopback.
func (r Registries) Origin(ref name.Reference) (name.Reference, error) {
	return name.ParseReference(ref.String(), r.nameOpts(ref.Context().RegistryStr())...)
}

// LookupLocal finds an image stored under LocalName(s) (what devbox
// commit and load store a name without a registry as), so that the short
// name given to commit also names the image later, after the image of
// that short name in its registry (docker.io) when both are stored.
func LookupLocal(st *store.Store, s string) (store.Image, bool) {
	n, err := LocalName(s)
	if err != nil {
		return store.Image{}, false
	}
	img, err := st.Lookup(n)
	return img, err == nil
}
