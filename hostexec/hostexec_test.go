package hostexec

import (
	"reflect"
	"testing"
)

func TestEnv(t *testing.T) {
	base := []string{"PATH=/usr/bin", "HOME=/home/me", "LANG=en_US.UTF-8", "DISPLAY=:0", "_DEVBOX_STAGE=hostexec"}
	caller := []string{"PATH=/box/bin", "LD_PRELOAD=/tmp/x.so", "HOME=/elsewhere", "LANG=de_DE.UTF-8", "LC_ALL=C.UTF-8",
		"TERM=xterm-kitty", "LC_=x", "LANG=twice", "NO_COLOR=1", "DISPLAY=:9", "BAD"}
	got := Env(base, caller)
	want := []string{"PATH=/usr/bin", "HOME=/home/me", "DISPLAY=:0", "LANG=twice", "LC_ALL=C.UTF-8", "TERM=xterm-kitty", "NO_COLOR=1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Env:\n got %q\nwant %q", got, want)
	}
}

func TestDir(t *testing.T) {
	dirs := map[string]bool{"/home/me": true, "/home/me/src": true, "/home/me2": true, "/tmp": true}
	isDir := func(p string) bool { return dirs[p] }
	for _, c := range []struct{ cwd, want string }{
		{"/home/me/src", "/home/me/src"},
		{"/home/me/src/../src/.", "/home/me/src"},
		{"/home/me", "/home/me"},
		{"/home/me/gone", "/home/me"},      // not a directory on the host
		{"/home/me2", "/home/me"},          // a prefix is not "under"
		{"/home/me/../../etc", "/home/me"}, // cleaned: outside the home
		{"/tmp", "/home/me"},               // the box's /tmp is not the host's
		{"relative", "/home/me"},
		{"", "/home/me"},
	} {
		if got := Dir(c.cwd, "/home/me", isDir); got != c.want {
			t.Errorf("Dir(%q) = %q, want %q", c.cwd, got, c.want)
		}
	}
}

func TestIsClient(t *testing.T) {
	for argv0, want := range map[string]bool{"devbox-host": true, "/usr/local/bin/devbox-host": true, "xdg-open": true,
		"devbox-hostexec": false, "devbox": false, "/usr/bin/devbox-init": false} {
		if IsClient(argv0) != want {
			t.Errorf("IsClient(%q) = %v", argv0, !want)
		}
	}
}
