package box

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/provision"
)

const (
	testID    = "0123456789abcdef0123456789abcdef"
	testLayer = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// goodRecord is a record as devbox create writes it, as a JSON object.
func goodRecord() map[string]any {
	return map[string]any{
		"version": RecordVersion, "id": testID, "name": "dev", "image": "docker.io/library/debian:13",
		"imageID": "sha256:" + testLayer, "lowers": []any{testLayer}, "created": "2026-01-02T03:04:05Z",
		"hostname": "dev", "net": "slirp", "home": "/home/me/boxes/dev",
		"volumes": []any{map[string]any{"source": "/srv/data", "target": "/data", "readOnly": true}},
		"env":     []any{"PATH=/usr/bin:/bin"}, "grace": 10, "publish": []any{"8080:80"},
	}
}

func TestParseRecord(t *testing.T) {
	cases := []struct {
		name string
		edit func(m map[string]any)
		raw  string // used instead of the edited record when set
		want string // "" accepts
	}{
		{"as written", func(map[string]any) {}, "", ""},
		{"no home, no volumes", func(m map[string]any) { delete(m, "home"); delete(m, "volumes") }, "", ""},
		{"unknown version", func(m map[string]any) { m["version"] = 2 }, "", "version 2"},
		{"id of another directory", func(m map[string]any) { m["id"] = "ffffffffffffffffffffffffffffffff" }, "", "does not match its directory"},
		{"bad name", func(m map[string]any) { m["name"] = "../x" }, "", "not a valid box name"},
		{"lower outside the store", func(m map[string]any) { m["lowers"] = []any{"/home/victim/canary"} }, "", "not a layer id"},
		{"lower with ..", func(m map[string]any) { m["lowers"] = []any{"../../../../home/victim"} }, "", "not a layer id"},
		{"no lowers", func(m map[string]any) { m["lowers"] = []any{} }, "", "no image layers"},
		{"relative home", func(m map[string]any) { m["home"] = "boxes/dev" }, "", "home \"boxes/dev\" is not an absolute path"},
		{"home with ..", func(m map[string]any) { m["home"] = "/home/me/../victim" }, "", "not a clean path"},
		{"relative volume source", func(m map[string]any) {
			m["volumes"] = []any{map[string]any{"source": "etc", "target": "/data"}}
		}, "", "volumes[0].source \"etc\" is not an absolute path"},
		{"volume source with ..", func(m map[string]any) {
			m["volumes"] = []any{map[string]any{"source": "/srv/../home/victim", "target": "/data"}}
		}, "", "not a clean path"},
		{"volume over /", func(m map[string]any) {
			m["volumes"] = []any{map[string]any{"source": "/srv", "target": "/"}}
		}, "", "the box's /"},
		{"hostname with a newline", func(m map[string]any) { m["hostname"] = "dev\n10.0.0.1 bank" }, "", "not a host name"},
		{"snapshots", func(m map[string]any) {
			m["snapshots"] = []any{map[string]any{"tag": "s1", "created": "2026-01-02T03:04:05Z", "lowers": []any{testLayer}}}
		}, "", ""},
		{"snapshot layer outside the store", func(m map[string]any) {
			m["snapshots"] = []any{map[string]any{"tag": "s1", "lowers": []any{"../../home/victim"}}}
		}, "", "snapshots[0]: layer"},
		{"snapshot tag with a slash", func(m map[string]any) {
			m["snapshots"] = []any{map[string]any{"tag": "../x", "lowers": []any{testLayer}}}
		}, "", "not a tag"},
		{"snapshot tag twice", func(m map[string]any) {
			sn := map[string]any{"tag": "s1", "lowers": []any{testLayer}}
			m["snapshots"] = []any{sn, sn}
		}, "", "used twice"},
		{"pending freeze of the top layer", func(m map[string]any) { m["pending"] = map[string]any{"op": "freeze", "layer": testLayer} }, "", ""},
		{"pending freeze of another layer", func(m map[string]any) {
			m["pending"] = map[string]any{"op": "freeze", "layer": strings.Repeat("b", 64)}
		}, "", "pending"},
		{"pending copy", func(m map[string]any) { m["pending"] = map[string]any{"op": "copy"} }, "", "pending"},
		{"devices", func(m map[string]any) { m["devices"] = []any{"/dev/kvm", "/dev/bus/usb"} }, "", ""},
		{"device outside /dev", func(m map[string]any) { m["devices"] = []any{"/etc/shadow"} }, "", "devices[0]"},
		{"device with ..", func(m map[string]any) { m["devices"] = []any{"/dev/../etc/shadow"} }, "", "devices[0]"},
		{"box's own pts", func(m map[string]any) { m["devices"] = []any{"/dev/pts/0"} }, "", "devices[0]"},
		// Provisioning lives in provision.json: box.json stays readable by
		// a devbox without it.
		{"provision in box.json", func(m map[string]any) { m["provision"] = map[string]any{"manager": "apt-get"} }, "", "unknown field \"provision\""},
		{"unknown net", func(m map[string]any) { m["net"] = "bridge" }, "", "not a network mode"},
		{"negative grace", func(m map[string]any) { m["grace"] = -1 }, "", "negative"},
		{"env without =", func(m map[string]any) { m["env"] = []any{"PATH"} }, "", "not KEY=VALUE"},
		{"bad image id", func(m map[string]any) { m["imageID"] = "md5:x" }, "", "not a sha256 digest"},
		{"lowers of the wrong type", func(m map[string]any) { m["lowers"] = "/etc" }, "", "field \"lowers\" must be a JSON array"},
		{"grace of the wrong type", func(m map[string]any) { m["grace"] = "10" }, "", "must be a JSON number"},
		{"unknown field", func(m map[string]any) { m["lowerdir"] = "/etc" }, "", "unknown field"},
		{"trailing data", nil, `{"version":1}{}`, "trailing data"},
		{"not JSON", nil, `version = 1`, "not a valid record"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.raw)
			if c.raw == "" {
				m := goodRecord()
				c.edit(m)
				b, _ = json.Marshal(m)
			}
			r, err := ParseRecord(b, testID, "/store/containers/"+testID+"/box.json")
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if r.Name != "dev" || len(r.Lowers) != 1 {
					t.Errorf("record %+v", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want containing %q", err, c.want)
			}
			msg := err.Error()
			if !IsBroken(err) || !strings.Contains(msg, "/store/containers/"+testID+"/box.json") || !strings.Contains(msg, "devbox rm -f ") || strings.Contains(msg, "\n") {
				t.Errorf("error is not one line naming the file with a hint: %q", msg)
			}
		})
	}
}

// TestListShowsBroken: a broken record is listed (never hidden), Get
// refuses it naming the file, Find returns it for rm and stop.
func TestListShowsBroken(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Dir: dir, LocksDir: t.TempDir()}
	good := &Record{ID: testID, Name: "good", Hostname: "good", Lowers: []string{testLayer}}
	if err := os.MkdirAll(s.BoxDir(testID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(good); err != nil {
		t.Fatal(err)
	}
	badID := strings.Repeat("b", 32)
	m := goodRecord()
	m["id"], m["name"], m["lowers"] = badID, "evil", []any{"/home/victim"}
	b, _ := json.Marshal(m)
	os.MkdirAll(s.BoxDir(badID), 0o700)
	os.WriteFile(filepath.Join(s.BoxDir(badID), "box.json"), b, 0o600)
	// A box directory that is a symlink to a record elsewhere.
	elsewhere := t.TempDir()
	os.WriteFile(filepath.Join(elsewhere, "box.json"), b, 0o600)
	linkID := strings.Repeat("c", 32)
	os.Symlink(elsewhere, s.BoxDir(linkID))
	// An ephemeral run's directory: not a box.
	os.MkdirAll(s.BoxDir(strings.Repeat("d", 32)), 0o700)

	all, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range all {
		got[r.Name] = "ok"
		if r.Problem != nil {
			got[r.Name] = r.Problem.Reason
		}
	}
	if len(all) != 3 || got["good"] != "ok" || !strings.Contains(got["evil"], "not a layer id") || !strings.Contains(got[linkID], "not a directory") {
		t.Fatalf("List = %v", got)
	}
	if _, err := s.Get("evil"); !IsBroken(err) || !strings.Contains(err.Error(), "devbox rm -f evil") {
		t.Errorf("Get(evil) = %v", err)
	}
	if r, err := s.Find("evil"); err != nil || r.Problem == nil || r.ID != badID || len(r.Lowers) != 0 {
		t.Errorf("Find(evil) = %+v, %v", r, err)
	}
	if err := s.Save(&Record{ID: badID, Name: "evil", Problem: &BrokenError{}}); err == nil {
		t.Error("a stand-in was saved")
	}
	if err := s.Create(&Record{ID: strings.Repeat("e", 32), Name: "evil", Hostname: "x", Lowers: []string{testLayer}}); err == nil {
		t.Error("created a box with the name of a broken one")
	}
	if err := s.Create(&Record{ID: strings.Repeat("f", 32), Name: "new", Hostname: "x", Lowers: []string{"/etc"}}); err == nil {
		t.Error("created an invalid record")
	}
}

// TestFindNamesUnreadable: a record without a readable name is named in
// the "no such box" error, with the id that removes it.
func TestFindNamesUnreadable(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	os.MkdirAll(s.BoxDir(testID), 0o700)
	os.WriteFile(filepath.Join(s.BoxDir(testID), "box.json"), []byte("{"), 0o600)
	_, err := s.Get("dev")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), filepath.Join(s.BoxDir(testID), "box.json")) || !strings.Contains(err.Error(), "devbox rm -f "+testID) {
		t.Errorf("Get = %v", err)
	}
	if r, err := s.Find(testID[:8]); err != nil || r.Problem == nil {
		t.Errorf("Find(id prefix) = %+v, %v", r, err)
	}
}

// provision.json is read with the record: strictly, checked, a bad one
// makes the box broken naming that file; box.json never carries it.
func TestProvisionFile(t *testing.T) {
	s := &Store{Dir: t.TempDir(), LocksDir: t.TempDir()}
	r := &Record{ID: testID, Name: "dev", Hostname: "dev", Lowers: []string{testLayer}, NoProvision: true}
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("dev")
	if err != nil || !got.NoProvision || got.Provision != nil {
		t.Fatalf("after create --no-provision: %+v, %v", got, err)
	}
	got.Provision = &provision.State{Manager: "apt-get", Installed: []string{"sudo"}, Lang: "de_DE.UTF-8", LangFallback: true}
	if err := s.SaveProvision(got); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(got); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.BoxDir(testID), "box.json")); strings.Contains(string(b), "rovision") {
		t.Errorf("box.json carries provisioning: %s", b)
	}
	if again, err := s.Get("dev"); err != nil || again.Provision == nil || again.Provision.Lang != "de_DE.UTF-8" || !again.Provision.LangFallback {
		t.Fatalf("read back: %+v, %v", again, err)
	}
	p := filepath.Join(s.BoxDir(testID), "provision.json")
	for body, why := range map[string]string{
		`{"provision": {"manager": "curl|sh"}}`:     "provision.manager",
		`{"provision": {"installed": ["sudo -y"]}}`: "provision.installed",
		`{"provision": {"lang": "C\nX"}}`:           "provision.lang",
		`{"noProvision": true, "bogus": 1}`:         "unknown field",
		`{"noProvision": true} {}`:                  "trailing data",
		`{"provision": {"problem": "two\nlines"}}`:  "one line",
	} {
		os.WriteFile(p, []byte(body), 0o600)
		_, err := s.Get("dev")
		if !IsBroken(err) || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want broken: %s", body, err, why)
		}
	}
	os.Remove(p)
	os.Symlink("/etc/passwd", p)
	if _, err := s.Get("dev"); !IsBroken(err) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("provision.json as a link: %v", err)
	}
}
