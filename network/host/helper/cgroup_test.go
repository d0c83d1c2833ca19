package helper

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBoxCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"v2 box", "/user.slice/user-1000.slice/user@1000.service/app.slice/devbox.scope/devbox-0123abcd", true},
		{"delegated subtree", "/user.slice/devbox-ab", true},
		{"CLI's leaf", "/user.slice/devbox-leaf", false},
		{"a per-box scope", "/app.slice/devbox-ab.scope", false},
		{"not devbox", "/user.slice/user-1000.slice/session-2.scope", false},
		{"bare prefix", "/devbox-", false},
		{"root", "/", false},
		{"relative", "devbox-ab", false},
		{"not clean", "/user.slice/x/../devbox-ab", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ok := boxCgroup(tc.in); ok != tc.ok {
				t.Errorf("boxCgroup(%q) = %v, want %v", tc.in, ok, tc.ok)
			}
		})
	}
}

// TestJoinBoxCgroupGiven: the helper joins the cgroup its options name and
// nothing else (not where the init is by the time it looks); none named,
// it stays; a name that is not a box's is refused.
func TestJoinBoxCgroupGiven(t *testing.T) {
	if home, err := joinBoxCgroup("/", ""); home != "" || err != nil {
		t.Errorf("no cgroup named: %q, %v; want to stay", home, err)
	}
	if !unified(cgroupRoot) {
		t.Logf("the refusal is checked only where %s is cgroup v2", cgroupRoot)
		return
	}
	if _, err := joinBoxCgroup(cgroupRoot, "/user.slice/session-1.scope"); err == nil {
		t.Error("joined a cgroup that is not a box's")
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
