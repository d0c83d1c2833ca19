package docs

import (
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/devbox-dev/devbox/cmd/factory"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/cmd/root"
)

// RepoRoot is the repository this file is in.
func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestEveryExampleHasARow: an example added to the docs or to --help
// without its row in Examples fails here; so does a row whose example is
// gone.
func TestEveryExampleHasARow(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	cmd := root.NewCmdRoot(factory.New(ios, slog.Default()))
	found, err := Extract(repoRoot(t), cmd)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 20 {
		t.Fatalf("only %d examples found: the extraction is broken", len(found))
	}
	seen := map[string]bool{}
	for _, f := range found {
		seen[f.Text] = true
		if _, ok := Examples[f.Text]; !ok {
			t.Errorf("%s: example %q has no row in test/docs/examples.go (add what running it must show)", f.Source, f.Text)
		}
	}
	for k := range Examples {
		if !seen[k] {
			t.Errorf("row %q: no such example in the docs or --help any more (remove the row)", k)
		}
	}
}

func TestKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"bin/devbox pull debian                  # alias → docker.io", "devbox pull debian"},
		{"  $ devbox ls", "devbox ls"},
		{"echo hi | devbox run busybox -- cat", "echo hi | devbox run busybox -- cat"},
		{"devbox: starting box web: cannot publish", ""},
		{"goreleaser check", ""},
		{"make build            # CGO_ENABLED=0", ""},
	} {
		if got := Key(c.in); got != c.want {
			t.Errorf("Key(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
