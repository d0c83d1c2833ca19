package image

import "testing"

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
	} {
		got, err := LocalName(c.in)
		if (err != nil) != (c.want == "") || got != c.want {
			t.Errorf("LocalName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
