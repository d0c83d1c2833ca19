package status

import (
	"errors"
	"strings"
	"testing"
)

func TestWatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines string // what the helper wrote before its pipe ended
		early bool
		want  string // the failure Watch reports ("" for none)
	}{
		{"fine", `{"ready":true}` + "\n" + `{"down":true}` + "\n", true, ""},
		{"fine, waited for", `{"ready":true}` + "\n" + `{"down":true}` + "\n", false, ""},
		{"start failed, early", `{"error":"gvisor driver: no"}` + "\n" + `{"down":true}` + "\n", true, "gvisor driver: no"},
		{"start failed, waited for", `{"error":"gvisor driver: no"}` + "\n" + `{"down":true}` + "\n", false, ""},
		{"died after ready", `{"ready":true}` + "\n", false, ErrExited.Error()},
		{"died after ready, early", `{"ready":true}` + "\n", true, ErrExited.Error()},
		{"no word, early", "", true, ErrExited.Error()},
		{"no word, waited for", "", false, ""},
		{"half a line", `{"ready":tr`, true, ErrExited.Error()},
		{"not the helper's line first", "panic: x\n" + `{"ready":true}` + "\n" + `{"down":true}` + "\n", true, ""},
		{"neither ready nor why", `{}` + "\n" + `{"down":true}` + "\n", true, "the network helper said neither ready nor why not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			Watch(strings.NewReader(tc.lines), tc.early, func(err error) { got = append(got, err.Error()) })
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("failed %q, want nothing", got)
			case tc.want != "" && (len(got) != 1 || got[0] != tc.want):
				t.Errorf("failed %q, want once %q", got, tc.want)
			}
		})
	}
}

func TestReadFirstOnce(t *testing.T) {
	n := 0
	var first Line
	down := Read(strings.NewReader(`{"ready":true}`+"\n"+`{"ready":true}`+"\n"+`{"down":true}`+"\n"+`{"error":"late"}`+"\n"), func(l Line, ok bool) {
		n++
		first = l
	})
	if !down || n != 1 || !first.Ready {
		t.Errorf("down %v, first called %d times with %+v", down, n, first)
	}
}

func TestWarning(t *testing.T) {
	for _, tc := range []struct{ why, want string }{
		{"the network helper exited unexpectedly (signal: killed)",
			"the box's network is down: the network helper exited unexpectedly (signal: killed) (hint: see /r/net.log; devbox run --net none to run without one)"},
		{`invalid DNS server "x" (hint: write an IP address)`,
			`the box's network is down: invalid DNS server "x" (hint: write an IP address; or see /r/net.log; devbox run --net none to run without one)`},
	} {
		if got := Warning(errors.New(tc.why), "/r/net.log", RunRemedy); got != tc.want {
			t.Errorf("Warning(%q)\n got %q\nwant %q", tc.why, got, tc.want)
		}
	}
}

func TestTeller(t *testing.T) {
	var told []error
	tl := NewTeller(func(err error) { told = append(told, err) })
	first, second := errors.New("first"), errors.New("second")
	if tl.Told() != nil {
		t.Error("told before any failure")
	}
	tl.Failed(first)
	tl.Failed(second)
	if len(told) != 1 || told[0] != first || tl.Told() != first || tl.Stop() != first {
		t.Errorf("told %v, want once %v", told, first)
	}
	tl = NewTeller(func(err error) { t.Errorf("told after Stop: %v", err) })
	if tl.Stop() != nil {
		t.Error("Stop before a failure returned one")
	}
	tl.Failed(first)
	if tl.Told() != nil {
		t.Error("a stopped Teller recorded a failure")
	}
}
