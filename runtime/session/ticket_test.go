package session

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/provision"
)

// vouched writes a box directory with box.json (and provision.json when
// prov is not "") and a ticket for it, as the CLI does after reading them.
// With withBox the ticket carries what a session takes from the two
// files, as the CLI's tickets do.
func vouched(t *testing.T, base, store, prov string, withBox bool) (dir string) {
	t.Helper()
	dir = filepath.Join(store, "containers", "0123456789abcdef")
	must(t, os.MkdirAll(dir, 0o700))
	rec := `{"version":1,"id":"0123456789abcdef","name":"dev","home":"","env":["A=1"],"lowers":["x"]}`
	must(t, os.WriteFile(filepath.Join(dir, "box.json"), []byte(rec), 0o600))
	tk := Ticket{Store: store, Name: "dev", ID: "0123456789abcdef", Dir: dir, Record: statID(t, filepath.Join(dir, "box.json"))}
	if prov != "" {
		must(t, os.WriteFile(filepath.Join(dir, "provision.json"), []byte(prov), 0o600))
		tk.Provision = statID(t, filepath.Join(dir, "provision.json"))
	}
	if withBox {
		var p struct {
			NoProvision bool             `json:"noProvision"`
			Provision   *provision.State `json:"provision"`
		}
		if prov != "" {
			must(t, json.Unmarshal([]byte(prov), &p))
		}
		tk.Box = &Box{ID: tk.ID, Name: tk.Name, Env: []string{"A=1"}, NoProvision: p.NoProvision, Provision: p.Provision}
	}
	must(t, Vouch(base, tk))
	return dir
}

func statID(t *testing.T, p string) FileID {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return IDOf(fi)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLookup(t *testing.T) {
	later := time.Now().Add(time.Minute)
	for _, c := range []struct {
		name   string
		prov   string
		change func(t *testing.T, dir, base, store string)
		store  string // looked up in another store
		lookup string // another name
		err    string // "": found
	}{
		{name: "as vouched"},
		{name: "provisioned", prov: `{"provision":{"lang":"C.UTF-8","langFallback":true}}`},
		{name: "another name", lookup: "other", err: "no such file"},
		{name: "another store", store: "/elsewhere", err: "no such file"},
		{name: "record rewritten", change: func(t *testing.T, dir, _, _ string) {
			b, _ := os.ReadFile(filepath.Join(dir, "box.json"))
			must(t, os.Remove(filepath.Join(dir, "box.json")))
			must(t, os.WriteFile(filepath.Join(dir, "box.json"), b, 0o600))
		}, err: "box.json changed"},
		{name: "record touched", change: func(t *testing.T, dir, _, _ string) {
			must(t, os.Chtimes(filepath.Join(dir, "box.json"), later, later))
		}, err: "box.json changed"},
		{name: "record gone", change: func(t *testing.T, dir, _, _ string) {
			must(t, os.Remove(filepath.Join(dir, "box.json")))
		}, err: "no such file"},
		{name: "record a symlink", change: func(t *testing.T, dir, _, _ string) {
			must(t, os.Rename(filepath.Join(dir, "box.json"), filepath.Join(dir, "real.json")))
			must(t, os.Symlink("real.json", filepath.Join(dir, "box.json")))
		}, err: "too many levels"},
		{name: "provision.json appeared", change: func(t *testing.T, dir, _, _ string) {
			must(t, os.WriteFile(filepath.Join(dir, "provision.json"), []byte(`{"noProvision":true}`), 0o600))
		}, err: "provision.json changed"},
		{name: "provision.json gone", prov: `{"noProvision":true}`, change: func(t *testing.T, dir, _, _ string) {
			must(t, os.Remove(filepath.Join(dir, "provision.json")))
		}, err: "no such file"},
		{name: "ticket of another box", change: func(t *testing.T, dir, base, store string) {
			must(t, os.Rename(ticketPath(base, store, "dev"), ticketPath(base, store, "other")))
		}, lookup: "other", err: "another box"},
	} {
		for _, withBox := range []bool{false, true} {
			name, want := c.name, c.err
			if withBox {
				name += ", box in the ticket"
			} else if c.lookup == "" && c.store == "" {
				want = "without the box" // a ticket is served only with what a session takes
			}
			t.Run(name, func(t *testing.T) {
				base, store := t.TempDir(), t.TempDir()
				dir := vouched(t, base, store, c.prov, withBox)
				if c.change != nil {
					c.change(t, dir, base, store)
				}
				st, name := store, "dev"
				if c.store != "" {
					st = c.store
				}
				if c.lookup != "" {
					name = c.lookup
				}
				b, err := Lookup(base, st, name)
				if want != "" {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Fatalf("Lookup: %v, want an error with %q", err, want)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if b.ID != "0123456789abcdef" || b.Name != "dev" || len(b.Env) != 1 || b.Env[0] != "A=1" {
					t.Errorf("Lookup = %+v", b)
				}
				if c.prov != "" && (b.Provision == nil || !b.Provision.LangFallback) {
					t.Errorf("provisioning state not read: %+v", b.Provision)
				}
			})
		}
	}
}

func TestVouchRefusesIncomplete(t *testing.T) {
	if err := Vouch(t.TempDir(), Ticket{Store: "/s", Name: "dev", ID: "x", Dir: "relative"}); err == nil {
		t.Error("a ticket without record identity or with a relative directory was written")
	}
}

func TestNeedsProvision(t *testing.T) {
	t.Setenv("HOME", "/home/me")
	no, yes := false, true
	for _, c := range []struct {
		name   string
		b      Box
		single bool
		auto   *bool
		want   bool
	}{
		{"a new dev box", Box{}, false, nil, true},
		{"own home given", Box{Home: "/home/me"}, false, &yes, true},
		{"a sandbox", Box{Home: "/srv/box"}, false, nil, false},
		{"single-ID mode", Box{}, true, nil, false},
		{"provisioned", Box{Provision: &provision.State{}}, false, nil, false},
		{"--no-provision", Box{NoProvision: true}, false, nil, false},
		{"auto = false", Box{}, false, &no, false},
	} {
		if got := NeedsProvision(c.b, c.single, c.auto); got != c.want {
			t.Errorf("%s: NeedsProvision = %v, want %v", c.name, got, c.want)
		}
	}
}

// A ticket whose box is not the one it names is not served from.
func TestLookupTicketBoxOfAnother(t *testing.T) {
	base, store := t.TempDir(), t.TempDir()
	vouched(t, base, store, "", true)
	b, _, err := readFile(ticketPath(base, store, "dev"))
	must(t, err)
	tk, err := decodeTicket(b)
	must(t, err)
	tk.Box.ID = "fedcba9876543210"
	must(t, Vouch(base, tk))
	if _, err := Lookup(base, store, "dev"); err == nil || !strings.Contains(err.Error(), "another box") {
		t.Fatalf("Lookup: %v, want an error for another box", err)
	}
}
