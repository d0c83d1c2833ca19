package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseExec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "gedit %U", want: []string{"gedit", "%U"}},
		{in: `/usr/bin/code --unity-launch %F`, want: []string{"/usr/bin/code", "--unity-launch", "%F"}},
		{in: `"/opt/my app/run" --x=1 %f`, want: []string{"/opt/my app/run", "--x=1", "%f"}},
		{in: `sh -c "echo \\$HOME \\"q\\" \\\\"`, want: []string{"sh", "-c", `echo $HOME "q" \`}},
		{in: `app %i %c %k --p=100%%`, want: []string{"app", "--p=100%"}},
		{in: `app\sx`, want: []string{"app", "x"}},
		{in: `app; rm -rf ~`, bad: true},
		{in: "app `id`", bad: true},
		{in: `app $(id)`, bad: true},
		{in: `app --file=%f`, bad: true},
		{in: `"unterminated`, bad: true},
		{in: `%U`, bad: true},
		{in: "app\x01", bad: true},
		{in: `sh -c 'id'`, bad: true},
	} {
		got, err := ParseExec(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseExec(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseExec(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// Every argument, however hostile, comes back as itself: the box's part
// of an Exec line cannot change devbox's.
func TestQuoteExecRoundTrip(t *testing.T) {
	for _, argv := range [][]string{
		{"/usr/bin/devbox", "exec", "dev", "--", "code", "%F"},
		{"/home/a b/devbox", "exec", "dev", "--", `x" ; rm -rf ~ ; "`, "$(id)", "`id`", `\`, `\\"`, "100%", "a'b", "~", "*?#()<>|&"},
		{"/d", "exec", "dev", "--", "", "%%U"},
	} {
		q, err := QuoteExec(argv)
		if err != nil {
			t.Fatalf("QuoteExec(%q): %v", argv, err)
		}
		back, err := ParseExec(q)
		if err != nil || !reflect.DeepEqual(back, argv) {
			t.Errorf("QuoteExec(%q) = %s, parsed back %q, %v", argv, q, back, err)
		}
	}
	if _, err := QuoteExec([]string{"a\nb"}); err == nil {
		t.Error("a newline in an argument was accepted")
	}
}

func TestParseDesktop(t *testing.T) {
	src := "# comment\n[Desktop Entry]\nType=Application\nName=Text Editor\nName[de]=Texteditor\n" +
		"Exec=gedit %U\nIcon=org.gnome.gedit\nCategories=GNOME;GTK;Utility;TextEditor;X-Foo;\n" +
		"MimeType=text/plain;bogus;application/x-shellscript;\nTerminal=false\nX-Other=1\n" +
		"Exec=evil\n[Desktop Action new]\nExec=evil --new\n"
	e, err := ParseDesktop([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &Entry{Name: "Text Editor", Exec: []string{"gedit", "%U"}, Icon: "org.gnome.gedit",
		Categories: []string{"Utility"}, MimeTypes: []string{"text/plain", "application/x-shellscript"}}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got %+v\nwant %+v", e, want)
	}
	for _, bad := range []string{
		"[Desktop Entry]\nType=Link\nName=x\nURL=http://x\n",
		"[Desktop Entry]\nType=Application\nExec=x\n",
		"[Desktop Entry]\nType=Application\nName=x\n",
		"[Desktop Entry]\nType=Application\nName=x\nExec=x;y\n",
		"[Desktop Entry]\nType=Application\nName=a\x1bb\nExec=x\n",
		"[Desktop Entry]\nType=Application\nName=x\xff\nExec=x\n",
	} {
		if _, err := ParseDesktop([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	out, err := Desktop(e, []string{"/usr/bin/devbox"}, "dev", "0123456789abcdef", "/home/u/.local/share/icons/devbox/dev-gedit.svg")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"Name=Text Editor (dev)", "Exec=/usr/bin/devbox exec dev -- gedit %U", "X-Devbox-Box=0123456789abcdef", "Categories=Utility;"} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("no line %q in\n%s", line, out)
		}
	}
}

// The launcher passes its arguments through exactly, whatever the names
// and paths contain.
func TestLauncherQuoting(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "dev'box $(x)")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nfor a; do printf '[%s]' \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := Launcher(fake, "/s t'o", "dev", "id1", "/usr/bin/it's `here`")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l, "#!/bin/sh\n") {
		t.Errorf("a devbox path with a blank as interpreter:\n%s", l)
	}
	p := filepath.Join(dir, "launcher")
	os.WriteFile(p, []byte(l), 0o755)
	out, err := exec.Command(p, "a b", "$HOME", "").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "[--store][/s t'o][exec][dev][--][/usr/bin/it's `here`][a b][$HOME][]"
	if string(out) != want {
		t.Errorf("launcher ran %s, want %s", out, want)
	}
	if markOf(p) != "id1" {
		t.Errorf("the launcher's mark is %q", markOf(p))
	}
	if l, err := ReadLaunch(p); err != nil || l != (Launch{Store: "/s t'o", Box: "dev", Bin: "/usr/bin/it's `here`"}) {
		t.Errorf("ReadLaunch: %+v %v", l, err)
	}
	if _, err := Launcher(fake, "", "dev", "id1", "/usr/bin/a\nb"); err == nil {
		t.Error("a newline in the path was accepted")
	}
	// devbox at a plain path: the kernel runs it on the launcher, no shell.
	plain := filepath.Join(dir, "devbox")
	os.WriteFile(plain, []byte("#!/bin/sh\nfor a; do printf '[%s]' \"$a\"; done\n"), 0o755)
	l, _ = Launcher(plain, "/s", "dev", "id1", "/usr/bin/x")
	p2 := filepath.Join(dir, "launcher2")
	os.WriteFile(p2, []byte(l), 0o755)
	if out, err := exec.Command(p2, "a b").Output(); err != nil || string(out) != "[launch]["+p2+"][a b]" {
		t.Errorf("shebang launcher ran %q, %v:\n%s", out, err, l)
	}
	// sh on the file runs the same command.
	if out, err := exec.Command("/bin/sh", p2, "a b").Output(); err != nil || string(out) != "[--store][/s][exec][dev][--][/usr/bin/x][a b]" {
		t.Errorf("sh launcher2 ran %q, %v", out, err)
	}
	if _, err := ReadLaunch(plain); err == nil {
		t.Error("ReadLaunch accepted a file without a launch line")
	}
}

func TestParseExecStart(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/usr/sbin/sshd -D", []string{"/usr/sbin/sshd", "-D"}},
		{`-/usr/bin/app "a b" 'c d' e\ f`, []string{"/usr/bin/app", "a b", "c d", "e f"}},
		{"/usr/bin/app $MAINPID", nil},
		{"/usr/bin/app %i", nil},
		{"app", nil},
		{"/bin/a ; /bin/b", nil},
	} {
		got, err := ParseExecStart(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q: accepted as %q", tc.in, got)
			}
		} else if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q, %v", tc.in, got, err)
		}
	}
	u, err := Unit([]string{"/usr/bin/devbox"}, "dev", "id1", "sshd", "OpenSSH 100%", []string{"/usr/sbin/sshd", `a"b$c`})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, `ExecStart="/usr/bin/devbox" "exec" "dev" "--" "/usr/sbin/sshd" "a\"b$$c"`) || !strings.Contains(u, "Description=OpenSSH 100%% (devbox box dev)") {
		t.Errorf("unit:\n%s", u)
	}
}

// layer builds a layer directory from a list of entries: "d path",
// "f path content", "l path target", "w path" (whiteout), "o path"
// (opaque directory).
func layer(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		f := strings.SplitN(e, " ", 3)
		p := filepath.Join(root, f[1])
		os.MkdirAll(filepath.Dir(p), 0o755)
		var err error
		switch f[0] {
		case "d":
			err = os.MkdirAll(p, 0o755)
		case "f":
			err = os.WriteFile(p, []byte(f[2]), 0o644)
		case "l":
			err = os.Symlink(f[2], p)
		case "w":
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		case "o":
			os.MkdirAll(p, 0o755)
			err = unix.Setxattr(p, "user.overlay.opaque", []byte("y"), 0)
		}
		if err != nil {
			t.Skipf("building layer entry %q: %v", e, err)
		}
	}
	return root
}

func TestRootfsStaysInBox(t *testing.T) {
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	os.WriteFile(secret, []byte("host secret"), 0o644)
	lower := layer(t,
		"f etc/os-release box os",
		"f usr/share/applications/a.desktop lower",
		"f usr/share/applications/gone.desktop lower",
		"f usr/share/old/x old",
		"l usr/share/pixmaps/up.png ../../../../../../../../"+secret[1:],
		"l usr/share/pixmaps/abs.png "+secret,
		"l usr/share/pixmaps/rel.png ../../../etc/os-release",
		"l usr/share/pixmaps/loop.png loop.png",
		"l hostdir "+host,
	)
	upper := layer(t,
		"f usr/share/applications/a.desktop upper",
		"w usr/share/applications/gone.desktop",
		"o usr/share/old",
		"l usr/share/pixmaps/via.png /hostdir/secret",
	)
	// A layer whose directory is a host symlink is never followed.
	evil := t.TempDir()
	os.MkdirAll(filepath.Join(evil, "usr"), 0o755)
	os.Symlink(host, filepath.Join(evil, "usr", "lib"))
	fs, err := OpenRootfs([]string{upper, evil, lower})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	for _, tc := range []struct{ path, want string }{
		{"/usr/share/applications/a.desktop", "upper"},
		{"/usr/share/applications/gone.desktop", ""},
		{"/usr/share/old/x", ""},
		{"/usr/share/pixmaps/up.png", ""},  // .. stops at the box's root
		{"/usr/share/pixmaps/abs.png", ""}, // an absolute link is the box's path
		{"/usr/share/pixmaps/rel.png", "box os"},
		{"/usr/share/pixmaps/loop.png", ""},
		{"/usr/share/pixmaps/via.png", ""}, // /hostdir is a link in the box, to a box path
		{"/usr/lib/secret", ""},
		{"/etc/../etc/./os-release", "box os"},
	} {
		b, err := fs.ReadFile(tc.path, 1<<20)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: read %q, want nothing", tc.path, b)
			}
			continue
		}
		if err != nil || string(b) != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.path, b, err, tc.want)
		}
	}
}

func TestUnexportRemovesOnlyMarkedFiles(t *testing.T) {
	home := t.TempDir()
	boxDir := t.TempDir()
	d := DefaultDirs(func(string) string { return "" }, home)
	b := &Box{ID: "id1", Name: "dev", Dir: boxDir, Dirs: d}
	os.MkdirAll(d.Apps, 0o755)
	os.MkdirAll(d.Bin, 0o755)
	mine := filepath.Join(d.Bin, "tool")
	os.WriteFile(mine, []byte("#!/bin/sh\n# X-Devbox-Box=id1\n"), 0o755)
	other := filepath.Join(d.Bin, "other") // replaced by the user since
	os.WriteFile(other, []byte("#!/bin/sh\necho mine\n"), 0o755)
	victim := filepath.Join(home, "notes.txt")
	os.WriteFile(victim, []byte("X-Devbox-Box=id1\n"), 0o644)
	link := filepath.Join(d.Apps, "devbox-dev-x.desktop")
	os.Symlink(mine, link)
	save(boxDir, []Item{
		{Kind: KindBin, Name: "tool", Source: "/usr/bin/tool", Path: mine},
		{Kind: KindBin, Name: "other", Source: "/usr/bin/other", Path: other},
		{Kind: KindApp, Name: "n", Source: "/usr/share/applications/n.desktop", Path: victim},
		{Kind: KindApp, Name: "x", Source: "/usr/share/applications/x.desktop", Path: link, Icon: victim},
	})
	removed, err := b.Unexport("", "")
	if len(removed) != 4 || err == nil {
		t.Errorf("removed %d, err %v", len(removed), err)
	}
	if _, e := os.Stat(mine); e == nil {
		t.Error("the launcher was left")
	}
	for _, p := range []string{other, victim} {
		if _, e := os.Stat(p); e != nil {
			t.Errorf("%s was removed", p)
		}
	}
	if _, e := os.Lstat(link); e != nil {
		t.Error("a symlink in place of an export was removed")
	}
	if items, _ := Load(boxDir); len(items) != 0 {
		t.Errorf("still recorded: %v", items)
	}
}

// Exports of each kind from a box's layers, recorded and removed again.
func TestBoxExports(t *testing.T) {
	home := t.TempDir()
	lower := layer(t,
		"f usr/share/applications/ed.desktop [Desktop Entry]\nType=Application\nName=Ed\nExec=ed %f\nIcon=/usr/share/pixmaps/ed.png\n",
		"f usr/share/pixmaps/ed.png "+testIconPNG,
		"f usr/lib/systemd/system/web.service [Unit]\nDescription=Web\n[Service]\nExecStart=-/usr/bin/web --port 8080\n",
		"f usr/bin/web #!/bin/sh\n",
	)
	os.Chmod(filepath.Join(lower, "usr/bin/web"), 0o755)
	d := DefaultDirs(func(string) string { return "" }, home)
	b := &Box{ID: "id1", Name: "dev", Dir: t.TempDir(), Layers: []string{filepath.Join(t.TempDir(), "none"), lower},
		Exe: "/usr/bin/devbox", Store: "/s", Dirs: d}
	if _, err := b.Service("web"); err != ErrNoUserManager {
		t.Errorf("--service without a user manager: %v", err)
	}
	b.Dirs.UserManager = "/run/user/1000/systemd/private"
	for _, tc := range []struct {
		do   func() (Item, error)
		path string
		has  string
	}{
		{func() (Item, error) { return b.App("ed") }, filepath.Join(d.Apps, "devbox-dev-ed.desktop"), "Exec=/usr/bin/devbox --store /s exec dev -- ed %f\n"},
		{func() (Item, error) { return b.Bin("web", "") }, filepath.Join(d.Bin, "web"), "exec '/usr/bin/devbox' '--store' '/s' exec 'dev' -- '/usr/bin/web' \"$@\"\n"},
		{func() (Item, error) { return b.Service("web.service") }, filepath.Join(d.Units, "devbox-dev-web.service"), `ExecStart="/usr/bin/devbox" "--store" "/s" "exec" "dev" "--" "/usr/bin/web" "--port" "8080"` + "\n"},
	} {
		it, err := tc.do()
		if err != nil || it.Path != tc.path {
			t.Fatalf("export: %+v %v", it, err)
		}
		if c, _ := os.ReadFile(tc.path); !strings.Contains(string(c), tc.has) {
			t.Errorf("%s:\n%s\nwant %q", tc.path, c, tc.has)
		}
	}
	icon := filepath.Join(d.Icons, "dev-ed.png")
	if c, err := os.ReadFile(icon); err != nil || string(c) != testIconPNG {
		t.Errorf("icon: %v", err)
	}
	if items, _ := Load(b.Dir); len(items) != 3 {
		t.Errorf("recorded %+v", items)
	}
	if _, err := b.Bin("nosuch", ""); err == nil {
		t.Error("exported a binary the box does not have")
	}
	if _, err := b.App("../../etc/passwd"); err == nil {
		t.Error("an app name with a path was accepted")
	}
	if _, err := b.Unexport("", ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(d.Apps, "devbox-dev-ed.desktop"), filepath.Join(d.Bin, "web"), filepath.Join(d.Units, "devbox-dev-web.service"), icon} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left", p)
		}
	}
}

const testIconPNG = "\x89PNG\r\n\x1a\nrest"

// A running box can swap a file it is asked for for a fifo between the
// look and the open (its upper directory is live): the read must fail, not
// wait on the fifo for a writer the box keeps silent.
func TestRootfsSwappedFifo(t *testing.T) {
	up := layer(t, "f usr/share/applications/a.desktop x")
	dir := filepath.Join(up, "usr", "share", "applications")
	fifo := filepath.Join(dir, ".fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The box's silent writer.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stop := make(chan struct{})
	swapped := make(chan struct{})
	go func() {
		defer close(swapped)
		a := filepath.Join(dir, "a.desktop")
		for {
			select {
			case <-stop:
				return
			default:
			}
			// exchange the file and the fifo, again and again
			unix.Renameat2(unix.AT_FDCWD, fifo, unix.AT_FDCWD, a, unix.RENAME_EXCHANGE)
		}
	}()
	defer func() { close(stop); <-swapped }()
	fs, err := OpenRootfs([]string{up})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	done := make(chan int)
	go func() {
		n := 0
		for i := 0; i < 3000; i++ {
			if _, err := fs.ReadFile("/usr/share/applications/a.desktop", 1024); err != nil {
				n++
			}
		}
		done <- n
	}()
	select {
	case n := <-done:
		t.Logf("%d of 3000 reads refused", n)
	case <-time.After(20 * time.Second):
		t.Fatal("a read waited on the swapped-in fifo")
	}
}

// exports.json is input: a dev box writes it when the store is under the
// home. It is read like a box record (no link followed, a regular file of
// at most 1 MiB, strict JSON), and an item devbox would not have written
// refuses the whole record (--list prints them; unexport removes them).
func TestLoadHostileManifest(t *testing.T) {
	good := `{"version":1,"items":[{"kind":"bin","name":"rg","source":"/usr/bin/rg","path":"/home/me/.local/bin/rg"}]}`
	item := func(it string) string { return `{"version":1,"items":[` + it + `]}` }
	cases := []struct {
		name  string
		plant func(p string)
		ok    bool
	}{
		{"good", func(p string) { os.WriteFile(p, []byte(good), 0o600) }, true},
		{"none", func(string) {}, true},
		{"a link to /dev/zero", func(p string) { os.Symlink("/dev/zero", p) }, false},
		{"a link to a good record", func(p string) {
			os.WriteFile(p+".real", []byte(good), 0o600)
			os.Symlink(p+".real", p)
		}, false},
		{"a fifo", func(p string) { unix.Mkfifo(p, 0o600) }, false},
		{"huge", func(p string) {
			os.WriteFile(p, []byte(good+strings.Repeat(" ", 2<<20)), 0o600)
		}, false},
		{"trailing data", func(p string) { os.WriteFile(p, []byte(good+"{}"), 0o600) }, false},
		{"unknown field", func(p string) { os.WriteFile(p, []byte(`{"version":1,"items":[],"x":1}`), 0o600) }, false},
		{"other version", func(p string) { os.WriteFile(p, []byte(`{"version":2,"items":[]}`), 0o600) }, false},
		{"escape in a path", func(p string) {
			os.WriteFile(p, []byte(item(`{"kind":"bin","name":"rg","source":"/usr/bin/rg","path":"/x/\u001b]52;c;aGk=\u0007"}`)), 0o600)
		}, false},
		{"C1 control in a source", func(p string) {
			os.WriteFile(p, []byte(item(`{"kind":"bin","name":"rg","source":"/usr/bin/\u009b2J","path":"/x/rg"}`)), 0o600)
		}, false},
		{"unknown kind", func(p string) {
			os.WriteFile(p, []byte(item(`{"kind":"exe","name":"rg","source":"/usr/bin/rg","path":"/x/rg"}`)), 0o600)
		}, false},
		{"relative path", func(p string) {
			os.WriteFile(p, []byte(item(`{"kind":"bin","name":"rg","source":"/usr/bin/rg","path":"../x"}`)), 0o600)
		}, false},
		{"bad name", func(p string) {
			os.WriteFile(p, []byte(item(`{"kind":"bin","name":"../rg","source":"/usr/bin/rg","path":"/x/rg"}`)), 0o600)
		}, false},
		{"relative icon", func(p string) {
			os.WriteFile(p, []byte(item(`{"kind":"app","name":"a","source":"/a","path":"/x/a.desktop","icon":"i.png"}`)), 0o600)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.plant(filepath.Join(dir, manifestName))
			done := make(chan error, 1)
			go func() { _, err := Load(dir); done <- err }()
			select {
			case err := <-done:
				if (err == nil) != c.ok {
					t.Errorf("Load: %v, want ok %v", err, c.ok)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Load did not return")
			}
		})
	}
}
