package image

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestLocalName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"dev", "localhost/dev:latest"},
		{"dev:1", "localhost/dev:1"},
		{"team/dev:1", "localhost/team/dev:1"},
		{"127.0.0.1:5000/team/dev:1", "127.0.0.1:5000/team/dev:1"},
		{"quay.io/org/dev", "quay.io/org/dev:latest"},
		{"docker.io/me/dev:2", "docker.io/me/dev:2"},
		{"dev@sha256:" + "0123456789012345678901234567890123456789012345678901234567890123", ""},
		{"Dev Box", ""},
		{"http://x/y", ""},
		// Paths a registry or a proxy in front of it could read as
		// another repository: refused (a push sends them as they are).
		{"team/../other:1", ""},
		{"../dev", ""},
		{"127.0.0.1:5000/a/../../v2/x:1", ""},
		{"team/./dev", ""},
		{"team//dev", ""},
		{"team/dev/", ""},
		{"a..b", ""},
		{".dev", ""},
		{"dev-", ""},
		{"a___b", ""},
		{"my.team/dev_x/a__b/c---d:1", "my.team/dev_x/a__b/c---d:1"},
		{"team/a.b/c---d:1", "localhost/team/a.b/c---d:1"},
		{"../dev", ""},
		{"a..b:5000/dev", ""},
	} {
		got, err := LocalName(c.in)
		if (err != nil) != (c.want == "") || got != c.want {
			t.Errorf("LocalName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestCheckRepositoryPushDest(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"127.0.0.1:5000/team/dev:1", true},
		{"registry.example.com/a.b/c_d/e__f/g-h:latest", true},
		{"127.0.0.1:5000/team/../admin/dev:1", false},
		{"127.0.0.1:5000/..:1", false},
		{"registry.example.com/x/./y", false},
		{"[::1]:5000/dev:1", true},
		{"reg..example.com/dev:1", false},
	} {
		ref, err := name.ParseReference(c.in)
		if err != nil {
			t.Fatalf("go-containerregistry refuses %q itself: %v", c.in, err)
		}
		err = CheckRepository(ref)
		if (err == nil) != c.ok {
			t.Errorf("CheckRepository(%q) = %v, want ok %v", c.in, err, c.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "hint:") || strings.Contains(err.Error(), "\n")) {
			t.Errorf("CheckRepository(%q): %q is not one line with a hint", c.in, err)
		}
	}
}
