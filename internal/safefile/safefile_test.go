package safefile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCreateAndOpenLock(t *testing.T) {
	cases := []struct {
		name  string
		plant func(t *testing.T, p, target string) // what is at p before
		lock  bool                                 // OpenLock, else Create
		fails bool
	}{
		{name: "create: nothing there", plant: func(*testing.T, string, string) {}},
		{name: "create: a file", plant: func(t *testing.T, p, _ string) { os.WriteFile(p, []byte("old"), 0o644) }},
		{name: "create: a link", plant: func(t *testing.T, p, tg string) { os.Symlink(tg, p) }},
		{name: "create: a fifo", plant: func(t *testing.T, p, _ string) { syscall.Mkfifo(p, 0o600) }},
		{name: "create: a directory", plant: func(t *testing.T, p, _ string) { os.Mkdir(p, 0o700) }, fails: true},
		{name: "lock: nothing there", lock: true, plant: func(*testing.T, string, string) {}},
		{name: "lock: a link", lock: true, plant: func(t *testing.T, p, tg string) { os.Symlink(tg, p) }},
		{name: "lock: a fifo", lock: true, plant: func(t *testing.T, p, _ string) { syscall.Mkfifo(p, 0o600) }, fails: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "target")
			if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "f")
			c.plant(t, p, target)
			var f *os.File
			var err error
			if c.lock {
				f, err = OpenLock(p, 0o666)
			} else {
				f, err = Create(p, 0, 0o600)
				if err == nil {
					_, err = f.WriteString("new")
				}
			}
			if f != nil {
				f.Close()
			}
			if (err != nil) != c.fails {
				t.Fatalf("err = %v, want failure %v", err, c.fails)
			}
			if b, _ := os.ReadFile(target); string(b) != "keep" {
				t.Errorf("target written: %q", b)
			}
			if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
				t.Errorf("target mode %v", fi.Mode())
			}
			if !c.fails {
				if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s is not a regular file: %v %v", p, fi, err)
				}
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("{}"), 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2048), 0o600)
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	link := filepath.Join(dir, "link")
	os.Symlink(good, link)
	for _, c := range []struct {
		path string
		ok   bool
	}{{good, true}, {big, false}, {fifo, false}, {zero, false}, {link, false}, {"/dev/zero", false}} {
		b, err := ReadFile(c.path, 1024)
		if (err == nil) != c.ok || c.ok && string(b) != "{}" {
			t.Errorf("ReadFile(%s) = %q, %v; want ok %v", filepath.Base(c.path), b, err, c.ok)
		}
	}
}
