package session

import (
	"bytes"
	"errors"
	"sort"
	"strconv"

	"github.com/devbox-dev/devbox/provision"
)

// The session ticket and the caller record are read by devbox's front at
// every session it serves, so they are kept in a format that costs next
// to nothing to read in a fresh process (encoding/json took 0.2–0.6 ms
// there, most of it building its caches for the types): a header line,
// then one value per line in a fixed order — a string as its length in
// bytes on a line, then its bytes and a newline (any byte survives, and
// reading it is a slice: unquoting a configuration file's content cost
// more than the rest of the record), a number in decimal, a bool as 0 or
// 1, a list as its length and its items. A record of another header,
// with a line too many or too few, or a value that does not parse is not
// read at all.

// recWriter appends a record's values.
type recWriter struct{ b []byte }

func newRecWriter(header string) *recWriter {
	return &recWriter{b: append([]byte(header), '\n')}
}

func (w *recWriter) str(s string) {
	w.int(int64(len(s)))
	w.b = append(w.b, s...)
	w.b = append(w.b, '\n')
}

func (w *recWriter) int(v int64) {
	w.b = strconv.AppendInt(w.b, v, 10)
	w.b = append(w.b, '\n')
}

func (w *recWriter) uint(v uint64) {
	w.b = strconv.AppendUint(w.b, v, 10)
	w.b = append(w.b, '\n')
}

func (w *recWriter) bool(v bool) {
	if v {
		w.b = append(w.b, "1\n"...)
	} else {
		w.b = append(w.b, "0\n"...)
	}
}

func (w *recWriter) strs(l []string) {
	w.int(int64(len(l)))
	for _, s := range l {
		w.str(s)
	}
}

func (w *recWriter) fileID(id FileID) {
	w.uint(id.Dev)
	w.uint(id.Ino)
	w.int(id.Size)
	w.int(id.Mtime)
	w.int(id.Ctime)
}

// errRecord says a record is not one this build writes.
var errRecord = errors.New("not a record of this devbox (it is rewritten at the next session the CLI starts)")

// recReader reads a record's values in the order they were written; the
// first error sticks and every later value is zero.
type recReader struct {
	b   []byte
	err error
}

func newRecReader(b []byte, header string) *recReader {
	r := &recReader{b: b}
	if string(r.line()) != header {
		r.err = errRecord
	}
	return r
}

func (r *recReader) line() []byte {
	if r.err != nil {
		return nil
	}
	i := bytes.IndexByte(r.b, '\n')
	if i < 0 {
		r.err = errRecord
		return nil
	}
	l := r.b[:i]
	r.b = r.b[i+1:]
	return l
}

func (r *recReader) str() string {
	n := r.int()
	switch {
	case r.err != nil:
		return ""
	case n < 0 || n >= int64(len(r.b)) || r.b[n] != '\n':
		r.err = errRecord
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n+1:]
	return s
}

func (r *recReader) int() int64 {
	return recNumber(r, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
}

func (r *recReader) uint() uint64 {
	return recNumber(r, func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) })
}

// recNumber reads a line that parse takes.
func recNumber[T int64 | uint64](r *recReader, parse func(string) (T, error)) T {
	l := r.line()
	if r.err != nil {
		return 0
	}
	v, err := parse(string(l))
	if err != nil {
		r.err = errRecord
		return 0
	}
	return v
}

func (r *recReader) bool() bool {
	switch l := r.line(); {
	case r.err != nil:
	case string(l) == "1":
		return true
	case string(l) != "0":
		r.err = errRecord
	}
	return false
}

// count reads a list's length, at most what the rest of the record can
// hold (a line per item).
func (r *recReader) count() int {
	n := r.int()
	if r.err == nil && (n < 0 || n > int64(bytes.Count(r.b, []byte{'\n'}))) {
		r.err = errRecord
		return 0
	}
	return int(n)
}

func (r *recReader) strs() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = r.str()
	}
	return l
}

func (r *recReader) fileID() FileID {
	return FileID{Dev: r.uint(), Ino: r.uint(), Size: r.int(), Mtime: r.int(), Ctime: r.int()}
}

// end returns the first error, or errRecord when values are left over.
func (r *recReader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = errRecord
	}
	return r.err
}

const (
	ticketHeader = "devbox-ticket 1"
	callerHeader = "devbox-caller 1"
)

// encode writes t as a record. Of a box's provisioning state it keeps
// what a session takes (session.go: that there is one, its locale).
func (t *Ticket) encode() []byte {
	w := newRecWriter(ticketHeader)
	w.str(t.Store)
	w.str(t.Name)
	w.str(t.ID)
	w.str(t.Dir)
	w.fileID(t.Record)
	w.fileID(t.Provision)
	w.bool(t.Box != nil)
	if b := t.Box; b != nil {
		w.str(b.ID)
		w.str(b.Name)
		w.str(b.Home)
		w.strs(b.Env)
		w.bool(b.Audio)
		w.bool(b.NoProvision)
		w.bool(b.Provision != nil)
		if p := b.Provision; p != nil {
			w.str(p.Lang)
			w.bool(p.LangFallback)
		}
	}
	return w.b
}

// decodeTicket reads a record encode wrote.
func decodeTicket(b []byte) (Ticket, error) {
	r := newRecReader(b, ticketHeader)
	t := Ticket{Store: r.str(), Name: r.str(), ID: r.str(), Dir: r.str(), Record: r.fileID(), Provision: r.fileID()}
	if r.bool() {
		t.Box = &Box{ID: r.str(), Name: r.str(), Home: r.str(), Env: r.strs(), Audio: r.bool(), NoProvision: r.bool()}
		if r.bool() {
			t.Box.Provision = &provision.State{Lang: r.str(), LangFallback: r.bool()}
		}
	}
	if err := r.end(); err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// encode writes c as a record (Env sorted by name).
func (c *Caller) encode() []byte {
	w := newRecWriter(callerHeader)
	w.str(c.Config.Path)
	w.bool(c.Config.Exists)
	w.str(string(c.Config.Content))
	w.str(c.Config.StoreRoot)
	switch a := c.Config.ProvisionAuto; {
	case a == nil:
		w.int(-1)
	case *a:
		w.int(1)
	default:
		w.int(0)
	}
	w.int(int64(len(c.Files)))
	for _, s := range c.Files {
		w.str(s.Path)
		w.fileID(s.File)
	}
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.int(int64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(c.Env[k])
	}
	id := &c.Ident
	w.int(int64(id.UID))
	w.int(int64(id.GID))
	w.bool(id.Single)
	w.str(id.Warning)
	a := &id.Account
	w.str(a.Name)
	w.int(int64(a.UID))
	w.int(int64(a.GID))
	w.str(a.Group)
	w.str(a.Gecos)
	w.str(a.Home)
	w.str(a.Shell)
	w.bool(a.Sudo)
	return w.b
}

// decodeCaller reads a record encode wrote.
func decodeCaller(b []byte) (Caller, error) {
	r := newRecReader(b, callerHeader)
	c := Caller{Config: ConfigSeen{Path: r.str(), Exists: r.bool(), Content: []byte(r.str()), StoreRoot: r.str()}}
	if len(c.Config.Content) == 0 {
		c.Config.Content = nil
	}
	switch auto := r.int(); auto {
	case -1:
	case 0, 1:
		v := auto == 1
		c.Config.ProvisionAuto = &v
	default:
		r.err = errRecord
	}
	c.Files = make([]Stamp, r.count())
	for i := range c.Files {
		c.Files[i] = Stamp{Path: r.str(), File: r.fileID()}
	}
	n := r.count()
	c.Env = make(map[string]string, n)
	for range n {
		k := r.str()
		c.Env[k] = r.str()
	}
	c.Ident = Ident{UID: int(r.int()), GID: int(r.int()), Single: r.bool(), Warning: r.str(),
		Account: Account{Name: r.str(), UID: int(r.int()), GID: int(r.int()), Group: r.str(), Gecos: r.str(),
			Home: r.str(), Shell: r.str(), Sudo: r.bool()}}
	if err := r.end(); err != nil {
		return Caller{}, err
	}
	return c, nil
}

// EncodeTicket is t as Vouch writes it (tests plant and forge tickets
// with it).
func EncodeTicket(t Ticket) []byte { return t.encode() }

// DecodeTicket reads a ticket as Lookup does.
func DecodeTicket(b []byte) (Ticket, error) { return decodeTicket(b) }
