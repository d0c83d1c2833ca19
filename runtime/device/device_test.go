package device

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"/dev/kvm": true, "/dev/bus/usb": true, "/dev/ttyUSB0": true,
		"/dev": false, "/dev/": false, "/dev/../etc/shadow": false, "dev/kvm": false, "/etc/passwd": false,
		"/dev/pts/0": false, "/dev/shm": false, "/dev/mqueue/x": false, "/dev/k\nvm": false, "/devx/kvm": false,
	} {
		if err := CheckPath(p); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", p, err, ok)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		arg, want, err string
	}{
		{"/dev/null", "/dev/null", ""},
		{link("null", "/dev/null"), "/dev/null", ""},
		{"/dev/../dev/null", "/dev/null", ""},
		{link("passwd", "/etc/passwd"), "", "not below /dev"},
		{"/etc/passwd", "", "not below /dev"},
		{"/dev", "", "not below /dev"},
		{"/dev/pts", "", "the box's own /dev"},
		{"dev/null", "", "not an absolute path"},
		{"/dev/devbox-no-such-device", "", "no such device"},
		{link("loop", filepath.Join(dir, "loop")), "", "--device"},
	}
	if fi, err := os.Stat("/dev/net"); err == nil && fi.IsDir() {
		cases = append(cases, struct{ arg, want, err string }{"/dev/net", "", "a directory that is not one of"})
	}
	for _, c := range cases {
		got, err := Resolve(c.arg)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("%s: %q, %v; want %q", c.arg, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %q, %v; want an error with %q", c.arg, got, err, c.err)
		}
	}
	// A root-only device (mode 0600): refused for a normal user.
	if os.Getuid() != 0 {
		for _, d := range []string{"/dev/cpu_dma_latency", "/dev/mem"} {
			if _, err := os.Stat(d); err != nil {
				continue
			}
			if _, err := Resolve(d); err == nil || !strings.Contains(err.Error(), "cannot open") {
				t.Errorf("%s: %v, want cannot open", d, err)
			}
		}
	}
}
