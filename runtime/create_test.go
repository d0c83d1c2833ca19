package runtime

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestNewSpec(t *testing.T) {
	cfg := &v1.ConfigFile{Config: v1.Config{
		Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/bin", "A=image"},
		WorkingDir: "/work", User: "app",
	}}
	host := []string{"TERM=xterm-256color", "SECRET=leak", "HOME=/home/me", "EDITOR=vim"}
	cases := []struct {
		name    string
		o       CreateOptions
		args    []string
		env     []string
		cwd     string
		user    string
		wantErr string
	}{
		{"image defaults", CreateOptions{HostEnv: host}, []string{"/entry", "default"},
			[]string{"PATH=/bin", "A=image", "TERM=xterm-256color"}, "/work", "app", ""},
		{"overrides", CreateOptions{HostEnv: host, Cmd: []string{"x", "y"}, Env: []string{"A=mine", "EDITOR", "NEW=1"}, Workdir: "/tmp", User: "0:0"},
			[]string{"/entry", "x", "y"}, []string{"PATH=/bin", "A=mine", "TERM=xterm-256color", "EDITOR=vim", "NEW=1"}, "/tmp", "0:0", ""},
		{"relative workdir", CreateOptions{Workdir: "rel"}, nil, nil, "", "", "absolute path"},
		{"bad env", CreateOptions{Env: []string{"=x"}}, nil, nil, "", "", "invalid --env"},
		{"bad net", CreateOptions{Net: "bridge"}, nil, nil, "", "", "invalid --net"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewSpec(cfg, c.o)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Args, c.args) || !reflect.DeepEqual(s.Env, c.env) || s.Cwd != c.cwd || s.User != c.user {
				t.Errorf("got args %q env %q cwd %q user %q", s.Args, s.Env, s.Cwd, s.User)
			}
			for _, kv := range s.Env {
				if strings.HasPrefix(kv, "SECRET=") || strings.HasPrefix(kv, "HOME=/home/me") {
					t.Errorf("host variable leaked: %s", kv)
				}
			}
		})
	}
	if _, err := NewSpec(&v1.ConfigFile{}, CreateOptions{}); err == nil {
		t.Error("an image without a command and no command given must fail")
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{"dev": true, "my-box_1.x": true, "-x": false, "a/b": false, "": false, strings.Repeat("a", 64): false} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

// FuzzValidName checks the hand-written matcher against the pattern it
// spells out.
func FuzzValidName(f *testing.F) {
	re := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	for _, s := range []string{"dev", "my-box_1.x", "-x", "a/b", "", "é", "a\n", strings.Repeat("a", 63), strings.Repeat("a", 64), ".a", "a."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validName(s), re.MatchString(s); got != want {
			t.Fatalf("validName(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
