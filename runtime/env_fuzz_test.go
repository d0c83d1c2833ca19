package runtime

import (
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzEnvFlag feeds arbitrary `-e` values through NewSpec's environment
// merge: no panic; an error is one line naming the value or giving a hint;
// a success yields KEY=VALUE entries with unique, non-empty keys.
func FuzzEnvFlag(f *testing.F) {
	for _, s := range []string{"FOO=bar", "FOO", "=x", "A=b=c", "A B=c", "TERM", "PATH=", "K\x00=v", "K\n=v", "é=ü", ""} {
		f.Add(s, "HOST=1")
	}
	cfg := &v1.ConfigFile{Config: v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin", "LANG=C"}}}
	f.Fuzz(func(t *testing.T, e1, e2 string) {
		s, err := NewSpec(cfg, CreateOptions{Env: []string{e1, e2}, HostEnv: []string{"HOST=1", "TERM=xterm", "FOO=host"}})
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error on several lines: %q", msg)
			}
			if !strings.Contains(msg, "hint") && !strings.Contains(msg, strconv.Quote(e1)) && !strings.Contains(msg, strconv.Quote(e2)) {
				t.Errorf("error names neither the value nor a fix: %q", msg)
			}
			return
		}
		seen := map[string]bool{}
		for _, kv := range s.Env {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" || seen[k] {
				t.Errorf("bad environment entry %q in %q", kv, s.Env)
			}
			seen[k] = true
		}
	})
}
