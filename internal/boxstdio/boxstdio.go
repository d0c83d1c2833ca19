// Package boxstdio gives a box's command devbox's stdin, stdout and stderr
// without handing the box more than their bytes. A descriptor is a way
// back to what it names: /proc/self/fd/N opens that object anew with the
// opener's own rights, and box root holds CAP_DAC_OVERRIDE and CAP_FOWNER
// over every file of the user's (the user's uid and gid are mapped into
// the box). A file given as a box's stdin (`devbox run IMAGE < ~/.bashrc`)
// was opened for writing that way, appended to and made 0666; a file given
// as its stdout was read back, and its mode changed (found by a red-team
// pass). A terminal is a way back too: a process the box leaves behind
// keeps it. What is not a pipe, a socket or a device of somebody else's
// reaches the box as a pipe that devbox copies to and from while the
// command runs (Relay).
package boxstdio

import (
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Direct reports whether f may be handed to a box as it is: a pipe, a
// socket (neither can be reopened for more than it is), a character
// device that is not the user's (/dev/null), or, when terminals is true,
// a terminal. Anything else — a regular file, a directory, a block device,
// a device of the user's — is relayed.
func Direct(f *os.File, terminals bool) bool {
	fd := int(f.Fd())
	if term.IsTerminal(fd) {
		return terminals
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK:
		return true
	case unix.S_IFCHR:
		return int(st.Uid) != os.Getuid()
	}
	return false
}

// Relay is fds 0-2 for a box: each of devbox's own that is Direct, a pipe
// that devbox copies to or from for each other.
type Relay struct {
	Files   []*os.File // fds 0-2 for the box
	boxEnds []*os.File // the pipe ends in Files, closed here once the box has them
	relayed bool
	outs    sync.WaitGroup
}

// New relays in, out and errOut where they are not Direct (terminals:
// whether a terminal is given as it is). Output to one file from both
// out and errOut goes through one pipe, so that their order is kept.
func New(in, out, errOut *os.File, terminals bool) (*Relay, error) {
	s := &Relay{}
	var outPipe *os.File // the box's end of out's pipe
	for i, f := range []*os.File{in, out, errOut} {
		if Direct(f, terminals) {
			s.Files = append(s.Files, f)
			continue
		}
		if i == 2 && outPipe != nil && sameFile(out, errOut) {
			s.Files = append(s.Files, outPipe)
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			s.Sent()
			return nil, err
		}
		s.relayed = true
		if i == 0 {
			s.Files, s.boxEnds = append(s.Files, r), append(s.boxEnds, r)
			go func() {
				_, _ = io.Copy(w, f)
				w.Close()
			}()
			continue
		}
		s.Files, s.boxEnds = append(s.Files, w), append(s.boxEnds, w)
		if i == 1 {
			outPipe = w
		}
		s.outs.Add(1)
		go func() {
			defer s.outs.Done()
			_, _ = io.Copy(f, r)
			r.Close()
		}()
	}
	return s, nil
}

// Relayed reports whether any of the three is relayed.
func (s *Relay) Relayed() bool { return s.relayed }

// Sent closes devbox's copies of the box's pipe ends (the box has its own
// once it started, or it never starts).
func (s *Relay) Sent() {
	for _, f := range s.boxEnds {
		f.Close()
	}
	s.boxEnds = nil
}

// Drain waits, at most d, for what the box wrote to reach devbox's stdout
// and stderr. A process the box left behind may hold its end of a pipe
// for good: what it writes later is not copied.
func (s *Relay) Drain(d time.Duration) {
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

// sameFile reports whether a and b are the same file.
func sameFile(a, b *os.File) bool {
	var sa, sb unix.Stat_t
	return unix.Fstat(int(a.Fd()), &sa) == nil && unix.Fstat(int(b.Fd()), &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
