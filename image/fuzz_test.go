package image

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/image/alias"
)

// checkUserError is the property every parser of user input keeps: its
// error is one line, and says what was wrong with which input (the input
// itself, quoted or not) or how to fix it (a hint).
func checkUserError(t *testing.T, input string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error for %q is not one line: %q", input, msg)
	}
	if !strings.Contains(msg, "hint") && !strings.Contains(msg, input) && !strings.Contains(msg, strconv.Quote(input)) {
		t.Errorf("error for %q has neither a hint nor the input: %q", input, msg)
	}
}

func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux", "windows/amd64", "linux//v7", " linux/amd64 ", "linux/amd64/v1/x", "linux/\x00", "/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		checkUserError(t, s, err)
		if err == nil {
			if p.OS != "linux" || p.Architecture == "" {
				t.Errorf("ParsePlatform(%q) = %+v", s, p)
			}
			if _, err := ParsePlatform(PlatformString(p)); err != nil {
				t.Errorf("ParsePlatform(%q) does not round-trip: %v", s, err)
			}
		}
	})
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"debian", "Fedroa:", "ubuntu:24.04", "quay.io/a/b:1", "a/b@sha256:" + strings.Repeat("a", 64),
		"https://x/y", "UPPER", "a:b:c", "localhost:5000/x", "x@sha256:zz", "", " ", "debian\nrm", "a\x00b", "::", "@", "a//b"} {
		f.Add(s)
	}
	tab := alias.New(map[string]string{"mine": "example.com/me/box:2", "broken": "not a ref"})
	f.Fuzz(func(t *testing.T, s string) {
		ref, _, err := Resolve(s, tab)
		checkUserError(t, s, err)
		if err == nil {
			if FullName(ref) == "" {
				t.Errorf("Resolve(%q) gave an empty name", s)
			}
			_ = SuggestAlias(s, tab, notFound{errors.New("image not found (hint: x)")})
		}
	})
}
