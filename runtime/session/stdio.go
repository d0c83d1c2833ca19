package session

import (
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// relay is what a session without a box pty gets as fds 0-2: the
// caller's own descriptors, except a terminal. A terminal is never handed
// to a box: a process the box leaves behind could keep it, read what the
// user types at the host's shell after the session (a password for
// sudo), and write to it or change its modes at any time. For a terminal
// the box gets a pipe instead, and devbox copies between the two while
// the session runs.
type relay struct {
	files   []*os.File // fds 0-2 for the box
	boxEnds []*os.File // the pipe ends in files, closed here once sent
	outs    sync.WaitGroup
}

// newRelay relays in, out and errOut through pipes where they are
// terminals.
func newRelay(in, out, errOut *os.File) (*relay, error) {
	s := &relay{}
	for i, f := range []*os.File{in, out, errOut} {
		if !term.IsTerminal(int(f.Fd())) {
			s.files = append(s.files, f)
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			s.sent()
			return nil, err
		}
		if i == 0 {
			s.files, s.boxEnds = append(s.files, r), append(s.boxEnds, r)
			go func() {
				_, _ = io.Copy(w, f)
				w.Close()
			}()
			continue
		}
		s.files, s.boxEnds = append(s.files, w), append(s.boxEnds, w)
		s.outs.Add(1)
		go func() {
			defer s.outs.Done()
			_, _ = io.Copy(f, r)
			r.Close()
		}()
	}
	return s, nil
}

// sent closes devbox's copies of the box's pipe ends (the agent has its
// own once they were sent, or the session never starts).
func (s *relay) sent() {
	for _, f := range s.boxEnds {
		f.Close()
	}
	s.boxEnds = nil
}

// drain waits, at most d, for what the session wrote to reach the
// terminal. A process the session left behind may hold its end of a pipe
// for good: what it writes later is not shown.
func (s *relay) drain(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.outs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}
