package self

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAdopt(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "devbox")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "notes")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	own, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, value string
		want        string
	}{
		{"a front", exe, exe},
		{"relative", "devbox", own},
		{"not clean", dir + "/./devbox", own},
		{"not executable", plain, own},
		{"missing", filepath.Join(dir, "gone"), own},
		{"a directory", dir, own},
		{"a memfd", "/proc/self/fd/3", own},
	} {
		t.Run(c.name, func(t *testing.T) {
			front = ""
			t.Setenv(Env, c.value)
			Adopt()
			if _, set := os.LookupEnv(Env); set {
				t.Errorf("%s is still set", Env)
			}
			if got, err := Path(); err != nil || got != c.want {
				t.Errorf("Path() = %q, %v; want %q", got, err, c.want)
			}
		})
	}
	front = ""
	if got, _ := Path(); got != own {
		t.Errorf("without a front, Path() = %q, want %q", got, own)
	}
}
