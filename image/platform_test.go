package image

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParsePlatform(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/arm64/v8", "linux/arm64/v8", true},
		{"linux/arm/v7", "linux/arm/v7", true},
		{"linux", "", false},
		{"windows/amd64", "", false},
		{"linux/sparc", "", false},
		{"linux//v8", "", false},
		{"linux/amd64/v1/x", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		p, err := ParsePlatform(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParsePlatform(%q) err = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if c.ok && PlatformString(p) != c.want {
			t.Errorf("ParsePlatform(%q) = %s, want %s", c.in, PlatformString(p), c.want)
		}
	}
}

func TestMatches(t *testing.T) {
	cases := []struct {
		have *v1.Platform
		want v1.Platform
		ok   bool
	}{
		{&v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "amd64"}, true},
		{&v1.Platform{OS: "linux", Architecture: "arm64"}, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, true},
		{&v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, false},
		{&v1.Platform{OS: "windows", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "amd64"}, false},
		{nil, v1.Platform{OS: "linux", Architecture: "amd64"}, true},
	}
	for i, c := range cases {
		if got := matches(c.have, c.want); got != c.ok {
			t.Errorf("case %d: matches = %v, want %v", i, got, c.ok)
		}
	}
}
