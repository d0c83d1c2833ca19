package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

const testPasswd = `# comment
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
dev:x:1000:1000:Dev,,,:/home/dev:/bin/bash
nohome:x:1001:1001::::
+nis
broken line
bad:x:notanumber:0::/:/bin/sh
dup:x:1000:2000::/dup:/bin/sh
`

const testGroup = `root:x:0:
wheel:x:10:dev,root
tty:x:5:
dev:x:1000:
docker:x:999: dev , other
empty:x:50:
bad:x:notanumber:dev
`

func TestResolveUser(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want User
	}{
		{"", User{Name: "root", UID: 0, GID: 0, Groups: []uint32{0, 10}, Home: "/root"}},
		{"root", User{Name: "root", UID: 0, GID: 0, Groups: []uint32{0, 10}, Home: "/root"}},
		{"dev", User{Name: "dev", UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 999}, Home: "/home/dev"}},
		{"1000", User{Name: "dev", UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 999}, Home: "/home/dev"}},
		{"dev:docker", User{Name: "dev", UID: 1000, GID: 999, Groups: []uint32{999, 10}, Home: "/home/dev"}},
		{"dev:5", User{Name: "dev", UID: 1000, GID: 5, Groups: []uint32{5, 10, 999}, Home: "/home/dev"}},
		{"1000:50", User{Name: "dev", UID: 1000, GID: 50, Groups: []uint32{50, 10, 999}, Home: "/home/dev"}},
		{"4242", User{UID: 4242, GID: 0, Groups: []uint32{0}, Home: "/"}},
		{"4242:4343", User{UID: 4242, GID: 4343, Groups: []uint32{4343}, Home: "/"}},
		{"4242:wheel", User{UID: 4242, GID: 10, Groups: []uint32{10}, Home: "/"}},
		{"nohome", User{Name: "nohome", UID: 1001, GID: 1001, Groups: []uint32{1001}, Home: "/"}},
		{"daemon", User{Name: "daemon", UID: 1, GID: 1, Groups: []uint32{1}, Home: "/usr/sbin"}},
	} {
		got, err := ResolveUser(tc.spec, []byte(testPasswd), []byte(testGroup))
		if err != nil {
			t.Errorf("ResolveUser(%q): %v", tc.spec, err)
			continue
		}
		if got.Name != tc.want.Name || got.UID != tc.want.UID || got.GID != tc.want.GID || got.Home != tc.want.Home || !slices.Equal(got.Groups, tc.want.Groups) {
			t.Errorf("ResolveUser(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
	}
}

func TestResolveUserErrors(t *testing.T) {
	for _, tc := range []struct{ spec, err string }{
		{"nobody", "unable to find user nobody: no matching entries in passwd file"},
		{"dev:nogroup", "unable to find group nogroup: no matching entries in group file"},
		{"dev:", `invalid user "dev:": empty group`},
		{"4294967295", `invalid user "4294967295": id 4294967295 out of range`},
		{"99999999999", `invalid user "99999999999": id 99999999999 out of range`},
		{"1:4294967295", `invalid group "4294967295": id 4294967295 out of range`},
		{"bad", "unable to find user bad: no matching entries in passwd file"},
	} {
		_, err := ResolveUser(tc.spec, []byte(testPasswd), []byte(testGroup))
		if err == nil || err.Error() != tc.err {
			t.Errorf("ResolveUser(%q) error = %v, want %q", tc.spec, err, tc.err)
		}
	}
	// No /etc/passwd at all: numeric users and root still work.
	if u, err := ResolveUser("", nil, nil); err != nil || u.UID != 0 || u.Home != "/" {
		t.Errorf("root without passwd: %+v %v", u, err)
	}
	if u, err := ResolveUser("7:8", nil, nil); err != nil || u.UID != 7 || u.GID != 8 {
		t.Errorf("7:8 without passwd: %+v %v", u, err)
	}
}

func TestParseIDMap(t *testing.T) {
	m, err := ParseIDMap([]byte("         0          1       1000\n      1000          0          1\n      1001       1001      64535\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (IDMap{{0, 1, 1000}, {1000, 0, 1}, {1001, 1001, 64535}}); !slices.Equal(m, want) {
		t.Errorf("ParseIDMap = %v", m)
	}
	for id, want := range map[uint32]bool{0: true, 999: true, 1000: true, 1001: true, 65535: true, 65536: false, 4294967295: false} {
		if m.Contains(id) != want {
			t.Errorf("Contains(%d) = %v", id, !want)
		}
	}
	full := IDMap{{0, 0, 4294967295}}
	if !full.Contains(4294967294) || full.Contains(4294967295) {
		t.Errorf("full map bounds")
	}
	for _, bad := range []string{"0 1\n", "a b c\n", "0 1 99999999999\n"} {
		if _, err := ParseIDMap([]byte(bad)); err == nil {
			t.Errorf("ParseIDMap(%q) accepted", bad)
		}
	}
}

func TestEnviron(t *testing.T) {
	u := User{Home: "/home/dev"}
	got := Environ([]string{"PATH=/bin", "_DEVBOX_STAGE=init", "_DEVBOX_NFDS=1", "TERM=xterm"}, u)
	if want := []string{"PATH=/bin", "TERM=xterm", "HOME=/home/dev"}; !slices.Equal(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
	got = Environ([]string{"HOME=/custom"}, u)
	if want := []string{"HOME=/custom"}; !slices.Equal(got, want) {
		t.Errorf("Environ keeps HOME: %q", got)
	}
	if got := Environ(nil, User{Home: "/"}); !slices.Equal(got, []string{"HOME=/"}) {
		t.Errorf("Environ(nil) = %q", got)
	}
}

func TestLookPath(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(d1, "tool"), "") // not executable
	writeFile(t, filepath.Join(d2, "tool"), "")
	os.Chmod(filepath.Join(d2, "tool"), 0o755)
	writeFile(t, filepath.Join(d1, "plain"), "")
	os.Mkdir(filepath.Join(d1, "adir"), 0o755)
	path := d1 + ":" + d2
	for _, tc := range []struct{ name, want, err string }{
		{"tool", filepath.Join(d2, "tool"), ""},   // the executable one wins
		{"plain", filepath.Join(d1, "plain"), ""}, // exec will say permission denied
		{"adir", "", "adir: command not found"},
		{"missing", "", "missing: command not found"},
		{"./rel/x", "./rel/x", ""},
		{"/abs/x", "/abs/x", ""},
	} {
		got, err := lookPath(tc.name, path)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("lookPath(%q) = %q, %v; want %q, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestExecError(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "script")
	writeFile(t, exists, "#!/missing\n")
	for _, tc := range []struct {
		name, file string
		err        error
		code       int
		msg        string
	}{
		{"x", "/nope/x", &os.PathError{Op: "fork/exec", Path: "/nope/x", Err: unix.ENOENT}, 127, "x: command not found"},
		{"/nope/x", "/nope/x", &os.PathError{Op: "fork/exec", Path: "/nope/x", Err: unix.ENOENT}, 127, "/nope/x: no such file or directory"},
		{"script", exists, &os.PathError{Op: "fork/exec", Err: unix.ENOENT}, 127, "script: no such file or directory (hint: its interpreter or dynamic loader is missing in the image)"},
		{"x", "/x", &os.PathError{Op: "fork/exec", Err: unix.EACCES}, 126, "x: permission denied"},
		{"x", "/x", &os.PathError{Op: "fork/exec", Err: unix.ENOEXEC}, 126, "x: exec format error (hint: it is neither a binary for this machine nor a script with a #! line)"},
		{"x", "/x", errors.New("boom"), 125, "starting x: boom"},
	} {
		code, err := execError(tc.name, tc.file, tc.err)
		if code != tc.code || err == nil || err.Error() != tc.msg {
			t.Errorf("execError(%q, %v) = %d %v; want %d %q", tc.name, tc.err, code, err, tc.code, tc.msg)
		}
	}
}
