package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSession(t *testing.T) {
	for _, c := range []struct {
		line string
		want *sessionArgs // nil: the CLI's
	}{
		{"shell dev -- true", &sessionArgs{name: "dev", args: []string{"true"}}},
		{"enter dev", &sessionArgs{name: "dev", args: []string{}}},
		{"shell dev make -k test", &sessionArgs{name: "dev", args: []string{"make", "-k", "test"}}},
		{"--store /s shell dev -- true", &sessionArgs{store: "/s", name: "dev", args: []string{"true"}}},
		{"--store=/s exec dev true", &sessionArgs{store: "/s", name: "dev", args: []string{"true"}}},
		{"shell --root dev -- id", &sessionArgs{name: "dev", args: []string{"id"}, root: true}},
		{"shell dev --root -t -- id", &sessionArgs{name: "dev", args: []string{"id"}, root: true, tty: true}},
		{"exec -it dev -- sh", &sessionArgs{name: "dev", args: []string{"sh"}, tty: true}},
		{"exec -i dev cat", &sessionArgs{name: "dev", args: []string{"cat"}}},
		{"exec dev -T -- ls -l", &sessionArgs{name: "dev", args: []string{"ls", "-l"}, noTTY: true}},
		{"shell dev -- --root", &sessionArgs{name: "dev", args: []string{"--root"}}},
		{"exec dev", nil},                      // no command: a usage error
		{"exec -t -T dev true", nil},           // contradicting flags
		{"shell -i dev", nil},                  // exec's flag
		{"shell --image debian dev", nil},      // a create flag
		{"shell dev --help", nil},              // help
		{"shell --devcontainer", nil},          // the project's box
		{"shell", nil},                         // no NAME
		{"shell -- dev", nil},                  //
		{"--log-level debug shell dev", nil},   // another global flag
		{"--store", nil},                       //
		{"ls", nil},                            // another verb
		{"shell dev --tty=false -- true", nil}, // a flag value
	} {
		got, ok := parseSession(strings.Fields(c.line))
		if c.want == nil {
			if ok {
				t.Errorf("%q: served by the front as %+v", c.line, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, *c.want) {
			t.Errorf("%q: %+v, %v; want %+v", c.line, got, ok, *c.want)
		}
	}
}
