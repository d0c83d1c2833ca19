package session

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/provision"
)

// fullCaller and fullTicket set every field (nonZero checks), with
// strings a line format could trip over.
func fullCaller() Caller {
	yes := true
	return Caller{
		Config: ConfigSeen{Path: "/home/me/.config/devbox/config.toml", Exists: true, Content: []byte("[store]\nroot = \"/srv\"\n\x00\xff"),
			StoreRoot: "/srv/store with space\n", ProvisionAuto: &yes},
		Files: []Stamp{{Path: "/etc/passwd", File: FileID{6, 7, 8, 9, 10}}, {Path: "/etc/subuid"}},
		Env:   map[string]string{"HOME": "/home/me", "SHELL": "", "USER": "me\"\\\x00\xff"},
		Ident: Ident{UID: 1000, GID: 1001, Single: true, Warning: "no ranges",
			Account: Account{Name: "me", UID: 1000, GID: 1001, Group: "us", Gecos: "Me, Myself", Home: "/home/me", Shell: "/bin/zsh", Sudo: true}},
	}
}

func fullTicket() Ticket {
	return Ticket{Store: "/srv/store", Name: "dev", ID: "0123456789abcdef", Dir: "/srv/store/containers/0123456789abcdef",
		Record: FileID{1, 2, 3, 4, 5}, Provision: FileID{6, 7, 8, 9, 10},
		Box: &Box{ID: "0123456789abcdef", Name: "dev", Home: "/home/me", Env: []string{"A=1", "B=\n"}, Audio: true, NoProvision: true,
			Provision: &provision.State{Lang: "de_DE.UTF-8", LangFallback: true}}}
}

// nonZero fails for a field of v (walked through pointers, structs and
// slices) left zero: a field added to the records without a value here
// would not be checked by the round trip.
func nonZero(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is nil", path)
			return
		}
		nonZero(t, path, v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type() == reflect.TypeOf(provision.State{}) {
				f := v.Type().Field(i).Name
				if f != "Lang" && f != "LangFallback" {
					continue // not in a ticket: a session does not take it
				}
			}
			nonZero(t, path+"."+v.Type().Field(i).Name, v.Field(i))
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is zero", path)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	c, tk := fullCaller(), fullTicket()
	nonZero(t, "Caller", reflect.ValueOf(c))
	nonZero(t, "Ticket", reflect.ValueOf(tk))
	gc, err := decodeCaller(c.encode())
	if err != nil || !reflect.DeepEqual(gc, c) {
		t.Errorf("caller: %+v, %v; want %+v", gc, err, c)
	}
	gt, err := decodeTicket(tk.encode())
	if err != nil || !reflect.DeepEqual(gt, tk) {
		t.Errorf("ticket: %+v, %v; want %+v", gt, err, tk)
	}
	for _, auto := range []*bool{nil, new(bool)} {
		c.Config.ProvisionAuto = auto
		if gc, err := decodeCaller(c.encode()); err != nil || !reflect.DeepEqual(gc.Config.ProvisionAuto, auto) {
			t.Errorf("provision auto %v: %v, %v", auto, gc.Config.ProvisionAuto, err)
		}
	}
	tk.Box.Provision = nil
	if gt, err := decodeTicket(tk.encode()); err != nil || gt.Box.Provision != nil {
		t.Errorf("a box without provisioning state: %+v, %v", gt.Box, err)
	}
	tk.Box = nil
	if gt, err := decodeTicket(tk.encode()); err != nil || gt.Box != nil {
		t.Errorf("a ticket without the box: %+v, %v", gt, err)
	}
}

// Anything but a whole record of this build is refused, never read in
// part.
func TestRecordRefused(t *testing.T) {
	tk, c := fullTicket(), fullCaller()
	good := string(tk.encode())
	lines := strings.SplitAfter(good, "\n")
	for name, b := range map[string]string{
		"empty":                 "",
		"another header":        strings.Replace(good, ticketHeader, "devbox-ticket 2", 1),
		"a caller record":       string(c.encode()),
		"cut short":             strings.Join(lines[:len(lines)-3], ""),
		"no last newline":       strings.TrimSuffix(good, "\n"),
		"a line too many":       good + "0\n",
		"a string too long":     strings.Replace(good, "\n3\ndev\n", "\n4\ndev\n", 1),
		"a string too short":    strings.Replace(good, "\n3\ndev\n", "\n2\ndev\n", 1),
		"a string past the end": strings.Replace(good, "\n3\ndev\n", "\n9999\ndev\n", 1),
		"not a number":          strings.Replace(good, "\n3\n", "\nthree\n", 1),
		"not a bool":            strings.Replace(good, "\n10\n1\n", "\n10\n2\n", 1),
		"count too large":       strings.Replace(good, "\n2\n3\nA=1\n", "\n99\n3\nA=1\n", 1),
		"negative count":        strings.Replace(good, "\n2\n3\nA=1\n", "\n-1\n3\nA=1\n", 1),
		"JSON (older CLI)":      `{"store":"/srv/store","name":"dev"}`,
	} {
		if b == good {
			t.Fatalf("%s: the case does not change the record", name)
		}
		if _, err := decodeTicket([]byte(b)); !errors.Is(err, errRecord) {
			t.Errorf("%s: %v, want errRecord", name, err)
		}
	}
}

// noteCaller records with a configuration of StoreRoot "/s" read from
// cfg and an identity of this process.
func noteCaller(t *testing.T, base, cfg string, ok bool) {
	t.Helper()
	must(t, NoteCaller(base, cfg, func(content []byte, exists bool) (ConfigSeen, error) {
		if exists && string(content) == "bad" {
			return ConfigSeen{}, errors.New("bad")
		}
		return ConfigSeen{StoreRoot: "/s"}, nil
	}, func() (Ident, bool, error) {
		return Ident{UID: os.Getuid(), GID: os.Getgid(), Account: Account{Name: "me"}}, ok, nil
	}))
}

func TestCallerRecall(t *testing.T) {
	write := func(content string) func(t *testing.T, cfg string) {
		return func(t *testing.T, cfg string) { must(t, os.WriteFile(cfg, []byte(content), 0o600)) }
	}
	for _, c := range []struct {
		name    string
		before  func(t *testing.T, cfg string) // before NoteCaller
		ok      bool                           // the identity is the files'
		after   func(t *testing.T, cfg string) // between NoteCaller and Recall
		recalls string                         // another path at Recall
		err     string                         // "": recalled
	}{
		{name: "no configuration file", ok: true},
		{name: "a configuration file written just now", before: write("[store]\n"), ok: true},
		{name: "a configuration through a link", before: func(t *testing.T, cfg string) {
			must(t, os.WriteFile(cfg+".real", []byte("x"), 0o600))
			must(t, os.Symlink(filepath.Base(cfg)+".real", cfg))
		}, ok: true},
		{name: "a configuration the CLI refuses", before: write("bad"), ok: true, err: "no such file"},
		{name: "identity from getsubids", ok: false, err: "no such file"},
		{name: "another configuration path", ok: true, recalls: "/elsewhere/config.toml", err: "no such file"},
		{name: "configuration appeared", ok: true, after: write("[store]\n"), err: "changed"},
		{name: "configuration edited", before: write("[store]\n"), ok: true, after: write("[stor]\n"), err: "changed"},
		{name: "configuration emptied", before: write("[store]\n"), ok: true, after: write(""), err: "changed"},
		{name: "configuration gone", before: write("[store]\n"), ok: true, after: func(t *testing.T, cfg string) {
			must(t, os.Remove(cfg))
		}, err: "changed"},
		{name: "configuration a directory", ok: true, after: func(t *testing.T, cfg string) {
			must(t, os.Mkdir(cfg, 0o700))
		}, err: "changed"},
		{name: "SHELL changed", ok: true, after: func(t *testing.T, _ string) { t.Setenv("SHELL", "/bin/other") }, err: "SHELL changed"},
		{name: "HOME changed", ok: true, after: func(t *testing.T, _ string) { t.Setenv("HOME", "/elsewhere") }, err: "HOME changed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			cfg := filepath.Join(t.TempDir(), "config.toml")
			if c.before != nil {
				c.before(t, cfg)
			}
			noteCaller(t, base, cfg, c.ok)
			if c.after != nil {
				c.after(t, cfg)
			}
			p := cfg
			if c.recalls != "" {
				p = c.recalls
			}
			got, err := Recall(base, p)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Recall: %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Config.StoreRoot != "/s" || got.Ident.Account.Name != "me" || len(got.Files) != len(IdentFiles) {
				t.Errorf("Recall = %+v", got)
			}
		})
	}
}

// An account file changed within settleTime is not recorded: a change in
// the same tick of the file system's clock could leave its identity as
// it was.
func TestCallerIdentFilesSettle(t *testing.T) {
	old := IdentFiles
	t.Cleanup(func() { IdentFiles = old })
	f := filepath.Join(t.TempDir(), "passwd")
	must(t, os.WriteFile(f, []byte("me:x:1000:1000::/home/me:/bin/sh\n"), 0o600))
	IdentFiles = []string{f}
	base := t.TempDir()
	noteCaller(t, base, filepath.Join(t.TempDir(), "none.toml"), true)
	if _, err := Recall(base, filepath.Join(t.TempDir(), "none.toml")); err == nil {
		t.Fatal("a file changed just now was recorded")
	}
	saved := settleTime
	settleTime = 0
	t.Cleanup(func() { settleTime = saved })
	cfg := filepath.Join(t.TempDir(), "none.toml")
	noteCaller(t, base, cfg, true)
	if _, err := Recall(base, cfg); err != nil {
		t.Fatal(err)
	}
	// Rewritten in place to the same size and times: ctime moved.
	fi, err := os.Stat(f)
	must(t, err)
	time.Sleep(10 * time.Millisecond)
	must(t, os.WriteFile(f, []byte("me:x:1000:1000::/home/me:/bin/zs\n"), 0o600))
	must(t, os.Chtimes(f, fi.ModTime(), fi.ModTime()))
	if _, err := Recall(base, cfg); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("Recall after an edit in place: %v", err)
	}
}

// prune keeps the caller record: it is no ticket, but not stale either.
func TestStaleKeepsCaller(t *testing.T) {
	base := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "none.toml")
	noteCaller(t, base, cfg, true)
	noteCaller(t, base, cfg+".other", true)
	if _, err := os.Stat(callerFile(base, cfg)); err != nil {
		t.Fatal(err)
	}
	stale, err := Stale(base, "/s", func(string, string) bool { return true })
	must(t, err)
	if len(stale) != 0 {
		t.Fatalf("Stale = %v", stale)
	}
	must(t, os.WriteFile(callerFile(base, cfg), []byte("damaged"), 0o600))
	b, err := os.ReadFile(callerFile(base, cfg+".other"))
	must(t, err)
	must(t, os.WriteFile(callerFile(base, cfg+".third"), b, 0o600)) // under another path's name
	if stale, _ := Stale(base, "/s", func(string, string) bool { return true }); len(stale) != 2 {
		t.Fatalf("a damaged caller record and one under another name are not both stale: %v", stale)
	}
}

// The CLI leaves a caller record that says what it would write as it is
// (no rewrite at every session), and replaces one that does not.
func TestNoteCallerKeepsSameRecord(t *testing.T) {
	base := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	noteCaller(t, base, cfg, true)
	before, err := os.Stat(callerFile(base, cfg))
	must(t, err)
	noteCaller(t, base, cfg, true)
	same, err := os.Stat(callerFile(base, cfg))
	must(t, err)
	if !os.SameFile(before, same) {
		t.Error("an unchanged record was rewritten")
	}
	must(t, os.WriteFile(cfg, []byte("[store]\n"), 0o600))
	noteCaller(t, base, cfg, true)
	after, err := os.Stat(callerFile(base, cfg))
	must(t, err)
	if os.SameFile(before, after) {
		t.Error("a changed record was not rewritten")
	}
}
