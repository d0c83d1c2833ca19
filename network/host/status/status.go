package status

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
)

// Line is one status line of the helper.
type Line struct {
	Ready bool   `json:"ready,omitempty"`
	Error string `json:"error,omitempty"`
	Down  bool   `json:"down,omitempty"`
}

// ErrExited is the failure of a helper whose pipe ended without its
// Down: it died (a crash, a kill) and the box's network with it.
var ErrExited = errors.New("the network helper exited unexpectedly")

// Read reads the helper's status lines from r until its Down or the end
// of the pipe. first is called once, with the first line, or with ok
// false when the pipe ended before one. Read reports whether Down
// arrived, the helper's normal end.
func Read(r io.Reader, first func(l Line, ok bool)) (down bool) {
	br := bufio.NewReader(r)
	called := false
	for {
		b, err := br.ReadBytes('\n')
		if err != nil {
			if !called {
				first(Line{}, false)
			}
			return false
		}
		var l Line
		if json.Unmarshal(b, &l) != nil {
			continue // not the helper's: skip it
		}
		if !called {
			called = true
			first(l, true)
		}
		if l.Down {
			return true
		}
	}
}

// StartError is how a helper's start went, from its first line (ok
// false: it ended without one): nil when the box's network came up.
func StartError(l Line, ok bool) error {
	switch {
	case !ok:
		return ErrExited
	case l.Error != "":
		return errors.New(l.Error)
	case !l.Ready && !l.Down:
		return errors.New("the network helper said neither ready nor why not")
	}
	return nil
}

// Watch reads the helper's status lines from r and calls failed, at most
// once and as soon as it is known, when the box's network does not work
// while the box runs: the helper's start failed (early: the box did not
// wait for it, runtime.Spec.NetEarly), or it died after its start
// (ErrExited). A box that waited for its helper fails its start with the
// helper's error instead, which is not Watch's to say: early false leaves
// start failures out. Watch returns once the helper said Down or its
// pipe ended.
func Watch(r io.Reader, early bool, failed func(error)) {
	var start error
	down := Read(r, func(l Line, ok bool) {
		start = StartError(l, ok)
		if start != nil && early {
			failed(start)
		}
	})
	if !down && start == nil {
		failed(ErrExited)
	}
}

// Teller tells a failure that Watch found, once, until it is stopped
// (the box is gone: what becomes of its network no longer matters).
type Teller struct {
	mu      sync.Mutex
	tell    func(error)
	told    error
	stopped bool
}

// NewTeller returns a Teller that calls tell.
func NewTeller(tell func(error)) *Teller { return &Teller{tell: tell} }

// Failed calls tell with err, unless it was called before or the Teller
// was stopped: Watch's failed.
func (t *Teller) Failed(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.told != nil || t.stopped {
		return
	}
	t.told = err
	t.tell(err) // under mu: Stop waits until it is told
}

// Stop stops t and returns what it told, if it did.
func (t *Teller) Stop() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	return t.told
}

// Told returns what t told, if it did.
func (t *Teller) Told() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.told
}

// RunRemedy is Warning's remedy for devbox run.
const RunRemedy = "devbox run --net none to run without one"

// Warning is what the user is told once a box's network failed while it
// runs (Watch): why, where the helper's log is (logPath, the box's
// runtime directory's net.log) and what else to do (remedy, e.g.
// RunRemedy), in the hint why ends with, if it has one.
func Warning(why error, logPath, remedy string) string {
	msg, hint := why.Error(), "see "+logPath+"; "+remedy
	if i := strings.LastIndex(msg, " (hint: "); i >= 0 && strings.HasSuffix(msg, ")") {
		msg, hint = msg[:i], msg[i+len(" (hint: "):len(msg)-1]+"; or "+hint
	}
	return "the box's network is down: " + msg + " (hint: " + hint + ")"
}
