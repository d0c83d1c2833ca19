package safefile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCreateAndOpenLock(t *testing.T) {
	cases := []struct {
		name  string
		plant func(t *testing.T, p, target string) // what is at p before
		lock  bool                                 // OpenLock, else Create
		app   bool                                 // Append
		fails bool
		want  string // what p holds after, when set
	}{
		{name: "create: nothing there", plant: func(*testing.T, string, string) {}},
		{name: "create: a file", plant: func(t *testing.T, p, _ string) { os.WriteFile(p, []byte("old"), 0o644) }},
		{name: "create: a link", plant: func(t *testing.T, p, tg string) { os.Symlink(tg, p) }},
		{name: "create: a fifo", plant: func(t *testing.T, p, _ string) { syscall.Mkfifo(p, 0o600) }},
		{name: "create: a directory", plant: func(t *testing.T, p, _ string) { os.Mkdir(p, 0o700) }, fails: true},
		{name: "lock: nothing there", lock: true, plant: func(*testing.T, string, string) {}},
		{name: "lock: a link", lock: true, plant: func(t *testing.T, p, tg string) { os.Symlink(tg, p) }},
		{name: "lock: a fifo", lock: true, plant: func(t *testing.T, p, _ string) { syscall.Mkfifo(p, 0o600) }, fails: true},
		{name: "append: nothing there", app: true, plant: func(*testing.T, string, string) {}, want: "new"},
		{name: "append: a file", app: true, plant: func(t *testing.T, p, _ string) { os.WriteFile(p, []byte("old"), 0o600) }, want: "oldnew"},
		{name: "append: a link", app: true, plant: func(t *testing.T, p, tg string) { os.Symlink(tg, p) }, want: "new"},
		{name: "append: a dangling link", app: true, plant: func(t *testing.T, p, tg string) { os.Symlink(tg+"-new", p) }, want: "new"},
		{name: "append: a fifo", app: true, plant: func(t *testing.T, p, _ string) { syscall.Mkfifo(p, 0o600) }, want: "new"},
		{name: "append: a fifo with a reader", app: true, plant: func(t *testing.T, p, _ string) {
			syscall.Mkfifo(p, 0o600)
			r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
		}, want: "new"},
		{name: "append: a directory", app: true, plant: func(t *testing.T, p, _ string) { os.Mkdir(p, 0o700) }, fails: true},
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
			switch {
			case c.lock:
				f, err = OpenLock(p, 0o666)
			case c.app:
				f, err = Append(p, 0o600)
				if err == nil {
					_, err = f.WriteString("new")
				}
			default:
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
			if _, err := os.Lstat(target + "-new"); err == nil {
				t.Errorf("created through a dangling link")
			}
			if c.want != "" {
				if b, _ := os.ReadFile(p); string(b) != c.want {
					t.Errorf("%s holds %q, want %q", p, b, c.want)
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

// TestWriteFile: a link planted at the file's name is replaced, never
// written through, and one at the old temporary name is neither followed
// nor in the way; no temporary is left.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("mine"), 0o644)
	p := filepath.Join(dir, "record")
	os.Symlink(victim, p)
	os.Symlink(victim, p+".tmp")
	if err := WriteFile(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "mine" {
		t.Errorf("written through a link: the victim holds %q", b)
	}
	fi, err := os.Lstat(p)
	if b, _ := os.ReadFile(p); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || string(b) != "new" {
		t.Errorf("the record: %v %v %q", fi, err, b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("a temporary file is left: %v", ents)
	}
}

// TestWriteFileConcurrent: writers of the same file at once (two sessions
// started together leave the same ticket) all succeed, and a reader
// always sees one writer's content whole. Before, writers shared one
// temporary name: one removed another's temporary and renamed it half
// written, or failed.
func TestWriteFileConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ticket")
	contents := map[string]bool{}
	for i := range 8 {
		contents[strings.Repeat(string(rune('a'+i)), 64<<10)] = true
	}
	if err := WriteFile(p, []byte(strings.Repeat("a", 64<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for c := range contents {
		go func() {
			var err error
			for range 50 {
				if err = WriteFile(p, []byte(c), 0o600); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	running := len(contents)
	for running > 0 {
		select {
		case err := <-done:
			running--
			if err != nil {
				t.Errorf("a writer failed: %v", err)
			}
		default:
			b, err := os.ReadFile(p)
			if err != nil || !contents[string(b)] {
				t.Fatalf("a reader saw %d bytes, not one writer's whole content (%v)", len(b), err)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("temporaries left: %v", ents)
	}
}
