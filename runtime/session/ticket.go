package session

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"syscall"

	"github.com/devbox-dev/devbox/internal/safefile"
	"golang.org/x/sys/unix"
)

// FileID identifies one version of a file: devbox rewrites a record by
// rename (a new inode); an edit in place changes its size or times.
type FileID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"` // nanoseconds
	Ctime int64  `json:"ctime"`
}

// IDOf returns the identity of the file fi describes (from Stat or
// Lstat), zero when fi carries no stat data.
func IDOf(fi os.FileInfo) FileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return FileID{}
	}
	return FileID{Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, Ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec}
}

// A Ticket is what the CLI leaves for devbox's front when it starts a
// session in a running box: that box ID, named Name in the store at
// Store, lives in Dir, and that its record files — box.json and
// provision.json (none when Provision is zero) — were valid as they were
// then (Record, Provision). The front serves `shell`/`exec` for that name
// itself only while both files are still exactly those: any change (a
// rewrite, a removal, an edit by hand) sends it to the CLI, which checks
// the record again and leaves a new ticket.
type Ticket struct {
	Store     string `json:"store"`
	Name      string `json:"name"`
	ID        string `json:"id"`
	Dir       string `json:"dir"`
	Record    FileID `json:"record"`
	Provision FileID `json:"provision"`
	// Box is what a session takes from those two files as the CLI read
	// them (runtime/box's SessionBox): while they are still exactly
	// those, the front takes it from here and does not read and decode
	// them again. A ticket without it (an older CLI's) has them read.
	Box *Box `json:"box,omitempty"`
}

// maxFile bounds what is read of a ticket or a record.
const maxFile = 1 << 20

// ticketPath is where the ticket for box name of store lives under the
// runtime directory base: one file per store and name.
func ticketPath(base, store, name string) string {
	h := fnv.New128a()
	h.Write([]byte(store + "\x00" + name))
	return filepath.Join(base, "front", hex.EncodeToString(h.Sum(nil)))
}

// Vouch writes ticket t under the runtime directory base (replacing the
// name's previous one).
func Vouch(base string, t Ticket) error {
	if t.Record == (FileID{}) || t.ID == "" || t.Name == "" || !filepath.IsAbs(t.Dir) {
		return errors.New("an incomplete session ticket")
	}
	b := t.encode()
	p := ticketPath(base, t.Store, t.Name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return safefile.WriteFile(p, b, 0o600)
}

// Lookup returns box name of the store at store as its ticket under the
// runtime directory base vouches for it: its box.json and provision.json
// must be the very files the ticket names. An error means the front
// cannot serve the box: the CLI must.
func Lookup(base, store, name string) (Box, error) {
	b, _, err := readFile(ticketPath(base, store, name))
	if err != nil {
		return Box{}, err
	}
	t, err := decodeTicket(b)
	if err != nil {
		return Box{}, fmt.Errorf("session ticket: %w", err)
	}
	if t.Store != store || t.Name != name || !filepath.IsAbs(t.Dir) || t.Record == (FileID{}) {
		return Box{}, errors.New("session ticket for another box")
	}
	if t.Box == nil {
		return Box{}, errors.New("session ticket without the box's session settings")
	}
	return t.vouchedBox()
}

// vouchedBox returns t.Box while box.json and provision.json are the
// very files the ticket names (provision.json absent if it names none).
func (t *Ticket) vouchedBox() (Box, error) {
	if t.Box.ID != t.ID || t.Box.Name != t.Name {
		return Box{}, errors.New("session ticket for another box")
	}
	id, err := fileID(filepath.Join(t.Dir, "box.json"))
	if err != nil {
		return Box{}, err
	}
	if id != t.Record {
		return Box{}, errors.New("box.json changed since the CLI checked it")
	}
	id, err = fileID(filepath.Join(t.Dir, "provision.json"))
	switch {
	case errors.Is(err, os.ErrNotExist) && t.Provision == (FileID{}):
	case err != nil:
		return Box{}, err
	case id != t.Provision:
		return Box{}, errors.New("provision.json changed since the CLI checked it")
	}
	return *t.Box, nil
}

// fileID returns the identity of the regular file of this user at path,
// not following a link (as readFile opens it).
func fileID(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return FileID{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return FileID{}, &os.PathError{Op: "open", Path: path, Err: unix.ELOOP}
	case st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Getuid():
		return FileID{}, fmt.Errorf("%s is not a regular file of yours", path)
	}
	return idOfStat(&st), nil
}

// idOfStat is the identity st describes.
func idOfStat(st *unix.Stat_t) FileID {
	return FileID{Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, Ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec}
}

// readFile reads the regular file at path, of this user, without
// following a link, and returns its identity as read.
func readFile(path string) ([]byte, FileID, error) { return readRegular(path, true) }

// readRegular reads the regular file at path — with own, one of this
// user's, not through a link — and returns its identity as read. Plain
// system calls: an os.File would set the Go runtime's poller up for it.
func readRegular(path string, own bool) ([]byte, FileID, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK
	if own {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return nil, FileID{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, FileID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || own && int(st.Uid) != os.Getuid() {
		return nil, FileID{}, fmt.Errorf("%s is not a regular file of yours", path)
	}
	if st.Size > maxFile {
		return nil, FileID{}, fmt.Errorf("%s is too large", path)
	}
	buf := make([]byte, 0, st.Size+1) // one more: EOF in the same read
	for len(buf) <= maxFile {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // it grew since the stat
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, FileID{}, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return buf, idOfStat(&st), nil
		}
		buf = buf[:len(buf)+n]
	}
	return nil, FileID{}, fmt.Errorf("%s is too large", path)
}
