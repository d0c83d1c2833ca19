package image

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestSuggestAlias(t *testing.T) {
	reg := newRegistry(t, nil)
	st := openStore(t)
	ref, _ := name.ParseReference(reg.host + "/library/debain:latest")
	_, pullErr := Pull(context.Background(), st, ref, Options{Platform: &amd64})
	if !errors.Is(pullErr, ErrNotFound) {
		t.Fatalf("a missing image is not ErrNotFound: %v", pullErr)
	}
	_, lookupErr := st.Lookup("docker.io/library/debain:latest")
	tab := alias.New(nil)
	other := errors.New("pulling x: connection refused (hint: check your network)")
	cases := []struct {
		input string
		err   error
		want  string // "" : unchanged
	}{
		{"debain", pullErr, `(hint: did you mean the alias "debian"? devbox aliases lists them)`},
		{"ubunut", lookupErr, `did you mean the alias "ubuntu"?`},
		{"Fedroa", fmt.Errorf("wrapped: %w", pullErr), `did you mean the alias "fedora"?`},
		{"debian", pullErr, ""},    // an alias: the error is genuine
		{"debain:13", pullErr, ""}, // not a bare word
		{"me/debain", pullErr, ""}, // not a bare word
		{"nginx", pullErr, ""},     // no alias is near
		{"debain", other, ""},      // not a not-found error
		{"debain", nil, ""},
	}
	for _, c := range cases {
		got := SuggestAlias(c.input, tab, c.err)
		if c.want == "" {
			if got != c.err {
				t.Errorf("SuggestAlias(%q, %v) changed the error to %v", c.input, c.err, got)
			}
			continue
		}
		msg := got.Error()
		if !strings.Contains(msg, c.want) || strings.Count(msg, "(hint:") != 1 || strings.Contains(msg, "\n") {
			t.Errorf("SuggestAlias(%q) = %q, want one hint with %q", c.input, msg, c.want)
		}
		if !errors.Is(got, c.err) {
			t.Errorf("SuggestAlias(%q) does not wrap the original error", c.input)
		}
	}
	if !errors.Is(lookupErr, store.ErrNotFound) {
		t.Errorf("lookup: %v", lookupErr)
	}
}
