package helper

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBoxCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"v2 box", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/devbox-0123abcd.scope/devbox-0123abcd\n", "/user.slice/user-1000.slice/user@1000.service/app.slice/devbox-0123abcd.scope/devbox-0123abcd", true},
		{"hybrid box", "12:pids:/user.slice\n1:name=systemd:/user.slice/x\n0::/user.slice/devbox-ab\n", "/user.slice/devbox-ab", true},
		{"CLI's leaf", "0::/user.slice/devbox-leaf\n", "", false},
		{"the scope", "0::/app.slice/devbox-ab.scope\n", "", false},
		{"not devbox", "0::/user.slice/user-1000.slice/session-2.scope\n", "", false},
		{"bare prefix", "0::/devbox-\n", "", false},
		{"v1 only", "12:pids:/devbox-ab\n", "", false},
		{"root", "0::/\n", "", false},
		{"relative", "0::devbox-ab\n", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := boxCgroup([]byte(tc.in))
			if got != tc.want || ok != tc.ok {
				t.Errorf("boxCgroup(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestMoveTo(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		name, group string
		mkdir       bool
		wantErr     bool
	}{
		{"box", "/a/devbox-1", true, false},
		{"gone", "/a/devbox-2", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.group)
			if tc.mkdir {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := moveTo(root, tc.group, 4242)
			if (err != nil) != tc.wantErr {
				t.Fatalf("moveTo: %v", err)
			}
			if err == nil {
				b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
				if string(b) != "4242" {
					t.Errorf("cgroup.procs = %q", b)
				}
			}
			if tc.wantErr {
				if lerr := leaveBoxCgroup(root, tc.group); lerr != nil {
					t.Errorf("leaveBoxCgroup of a gone cgroup: %v", lerr)
				}
			}
		})
	}
}
