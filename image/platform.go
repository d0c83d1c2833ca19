package image

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostPlatform is the platform devbox runs on.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
		if v := os.Getenv("GOARM"); v == "6" {
			p.Variant = "v6"
		}
	}
	return p
}

var knownArch = map[string]bool{"amd64": true, "arm64": true, "arm": true, "386": true, "ppc64le": true, "s390x": true, "riscv64": true, "mips64le": true, "loong64": true}

// ParsePlatform parses os/arch[/variant], e.g. linux/arm64/v8.
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	bad := func(why string) (v1.Platform, error) {
		return v1.Platform{}, fmt.Errorf("invalid platform %q: %s (hint: use os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8)", s, why)
	}
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want two or three parts")
	}
	for _, p := range parts {
		if p == "" {
			return bad("empty part")
		}
	}
	if parts[0] != "linux" {
		return bad("devbox runs Linux images only")
	}
	if !knownArch[parts[1]] {
		return bad(fmt.Sprintf("unknown architecture %q", parts[1]))
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// PlatformString renders p as os/arch[/variant].
func PlatformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// matches reports whether an index entry's platform satisfies want. A
// missing variant on either side matches (arm64 images rarely say v8).
func matches(have *v1.Platform, want v1.Platform) bool {
	if have == nil {
		return want.OS == "linux" && want.Architecture == "amd64"
	}
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	return have.Variant == "" || want.Variant == "" || have.Variant == want.Variant
}
