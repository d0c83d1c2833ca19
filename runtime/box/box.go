// Package box keeps the records of persistent boxes on the host: which
// boxes exist (containers/<id>/box.json in the store), where a running box
// can be reached ($XDG_RUNTIME_DIR/devbox/<id>/agent.sock), and the locks
// that make concurrent commands safe. It runs on the host only and never
// enters a namespace.
package box

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/internal/rundir"
	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/runtime/session"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// RecordVersion is bumped when Record changes incompatibly.
const RecordVersion = 1

// ErrNotFound is returned for an unknown box name.
var ErrNotFound = errors.New("no such box")

// Volume is a host directory bound into the box.
type Volume struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// Dev and Ino identify Source as it was at create (Source has no
	// symbolic link in it then); every start binds only that directory.
	// Records made before they were kept have none.
	Dev uint64 `json:"dev,omitempty"`
	Ino uint64 `json:"ino,omitempty"`
}

// Record is a box's persistent description (box.json). The runtime spec
// is derived from it at every start, with the caller's current desktop
// session (display, sockets) filled in.
type Record struct {
	Version  int       `json:"version"`
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Image    string    `json:"image"`   // full reference
	ImageID  string    `json:"imageID"` // digest of the stored manifest
	Lowers   []string  `json:"lowers"`  // chain IDs, top-most first
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname"`
	Net      string    `json:"net"`
	Home     string    `json:"home"` // host directory mounted at the user's home path
	// HomeDev and HomeIno identify Home as it was at create, as a
	// Volume's Dev and Ino do.
	HomeDev uint64 `json:"homeDev,omitempty"`
	HomeIno uint64 `json:"homeIno,omitempty"`
	// Desktop binds the caller's desktop session (Wayland, PipeWire,
	// PulseAudio, the session bus, X11, the SSH agent) into a box with
	// its own Home too (create --desktop); a box with the user's home
	// always gets it. A box with its own Home gets only Wayland, and
	// PipeWire and PulseAudio only with Audio (create --desktop --audio):
	// their protocols let a client load modules into, or create objects
	// in, the user's audio server on the host.
	Desktop bool     `json:"desktop,omitempty"`
	Audio   bool     `json:"audio,omitempty"`
	Volumes []Volume `json:"volumes,omitempty"`
	Env     []string `json:"env,omitempty"` // image Env plus create-time --env
	// CapAdd and CapDrop change the capability bounding set of the box's
	// commands from the default one (create --cap-add, --cap-drop).
	CapAdd  []string `json:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty"`
	// SecurityOpt are create --security-opt values (seccomp=unconfined,
	// no-new-privileges).
	SecurityOpt []string `json:"securityOpt,omitempty"`
	// Grace is how long the box stays up after its last session, in
	// seconds; 0 means the default.
	Grace int `json:"grace,omitempty"`
	// Limits are applied to the box's cgroup at every start.
	Limits cgroup.Limits `json:"limits,omitzero"`
	// Publish are the box's published ports (-p values, as given); the
	// network mode is Net ("slirp" picks the driver at every start).
	Publish        []string `json:"publish,omitempty"`
	NoAutoPorts    bool     `json:"noAutoPorts,omitempty"`
	NoHostLoopback bool     `json:"noHostLoopback,omitempty"`
	// Devices are host devices (or directories of them, like /dev/dri)
	// bound into the box at every start (create --device).
	Devices []string `json:"devices,omitempty"`
	// NoProvision turns first-start provisioning off (create
	// --no-provision); Provision is what it did, nil until it ran. Both
	// live in provision.json next to box.json (ProvisionRecord), not in
	// it: a devbox that predates provisioning still reads box.json.
	NoProvision bool             `json:"-"`
	Provision   *provision.State `json:"-"`
	// Snapshots are the box's snapshots, oldest first (devbox snapshot;
	// snapshot.go); Pending is a move of its writable layer the record
	// describes and an interrupted devbox may not have made.
	Snapshots []Snapshot `json:"snapshots,omitempty"`
	Pending   *Pending   `json:"pending,omitempty"`
	// OnStart are shell commands run as the box's root at every start
	// (a box file's on_start hooks; devbox assemble).
	OnStart []string `json:"onStart,omitempty"`

	// Problem is set, and nothing but ID and Name, when the box's record
	// cannot be used (List, Find): such a box is listed as broken and may
	// be stopped and removed, never started.
	Problem *BrokenError `json:"-"`
	// RecordFile and ProvisionFile identify box.json and provision.json
	// as read (zero: not read from a file, or no provision.json): a
	// session ticket names them (runtime/session).
	RecordFile    session.FileID `json:"-"`
	ProvisionFile session.FileID `json:"-"`
}

// Store is the set of boxes of one devbox store.
type Store struct {
	Dir        string // the store's containers/ directory
	LocksDir   string // the store's locks/ directory
	RuntimeDir string // $XDG_RUNTIME_DIR/devbox
}

// RuntimeBase returns the per-user runtime directory for running boxes
// (rundir.Base).
func RuntimeBase() (string, error) { return rundir.Base() }

// Open returns the box store rooted in the image store's directories.
func Open(containersDir, locksDir string) (*Store, error) {
	rt, err := RuntimeBase()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{containersDir, locksDir, rt} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	return &Store{Dir: containersDir, LocksDir: locksDir, RuntimeDir: rt}, nil
}

// BoxDir is where box id's files live.
func (s *Store) BoxDir(id string) string { return filepath.Join(s.Dir, id) }

// RunDir is where a running box id can be reached.
func (s *Store) RunDir(id string) string { return rundir.Box(s.RuntimeDir, id) }

// SocketPath is the agent socket of box id.
func (s *Store) SocketPath(id string) string { return rundir.AgentSocket(s.RuntimeDir, id) }

// Lock takes the lock named name (exclusive) and returns its release.
func (s *Store) Lock(name string) (func(), error) {
	f, err := safefile.OpenLock(filepath.Join(s.LocksDir, name+".lock"), 0o666)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	err = safefile.Flock(int(f.Fd()), unix.LOCK_EX)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}

// TryLock takes the lock named name when no process holds it: held is
// false (and unlock nil) when one does. forget, called while holding it,
// unlinks the lock's file, for a lock whose purpose is gone.
func (s *Store) TryLock(name string) (unlock, forget func(), held bool, err error) {
	p := filepath.Join(s.LocksDir, name+".lock")
	f, err := safefile.OpenLock(p, 0o666)
	if err != nil {
		return nil, nil, false, fmt.Errorf("opening lock: %w", err)
	}
	err = safefile.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		f.Close()
		return nil, nil, true, nil
	}
	if err != nil {
		f.Close()
		return nil, nil, false, fmt.Errorf("locking %s: %w", name, err)
	}
	return func() { f.Close() }, func() { os.Remove(p) }, false, nil
}

// HasLock reports whether lock name's file exists (some process made it;
// it may be free).
func (s *Store) HasLock(name string) bool {
	_, err := os.Lstat(filepath.Join(s.LocksDir, name+".lock"))
	return err == nil
}

// List returns every box, sorted by name: the valid records, and for
// each box directory whose record cannot be used a stand-in that carries
// only its ID, Name (the record's when valid, else the id) and Problem.
// Directories without a box.json (ephemeral runs) are not boxes.
func (s *Store) List() ([]*Record, error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing boxes: %w", err)
	}
	var out []*Record
	for _, e := range ents {
		r, err := s.read(e)
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// read returns the box in directory entry e; an error means e is not a
// box at all.
func (s *Store) read(e fs.DirEntry) (*Record, error) {
	id := e.Name()
	path := filepath.Join(s.BoxDir(id), "box.json")
	stand := func(name string, reason error) *Record {
		be, ok := reason.(*BrokenError)
		if !ok {
			be = &BrokenError{Path: path, Name: name, Reason: reason.Error()}
		}
		return &Record{ID: id, Name: be.Name, Problem: be}
	}
	if !e.IsDir() {
		// A box directory replaced by a symlink or a file: never
		// followed, but shown, so that it is not silently ignored.
		if _, err := os.Lstat(path); err == nil || e.Type()&fs.ModeSymlink != 0 {
			return stand(id, errors.New("its directory is not a directory (a symbolic link?)")), nil
		}
		return nil, errors.New("not a box")
	}
	b, fileID, err := readRecordID(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return stand(id, err), nil
	}
	r, err := ParseRecord(b, id, path)
	if err != nil {
		return stand(id, err), nil
	}
	r.RecordFile = fileID
	if err := readProvision(s.BoxDir(id), r); err != nil {
		return stand(r.Name, err), nil
	}
	return r, nil
}

// Find returns the box named name (or whose id starts with name, given at
// least 6 characters), broken or not: for stop, rm and inspect.
func (s *Store) Find(name string) (*Record, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if r.Name == name {
			return r, nil
		}
	}
	if len(name) >= 6 {
		for _, r := range all {
			if strings.HasPrefix(r.ID, name) {
				return r, nil
			}
		}
	}
	// A record that cannot be read has no name: it may be the box asked
	// for, so say so rather than only "no such box".
	for _, r := range all {
		if p := r.Problem; p != nil && p.Name == r.ID {
			return nil, &unreadableError{name: name, id: r.ID, b: p}
		}
	}
	return nil, fmt.Errorf("%w %q (hint: devbox ls lists your boxes; devbox create %s --image IMAGE makes one)", ErrNotFound, name, name)
}

// unreadableError is "no such box" when a record without a readable name
// exists: it is ErrNotFound and a *BrokenError at once.
type unreadableError struct {
	name, id string
	b        *BrokenError
}

func (e *unreadableError) Error() string {
	return fmt.Sprintf("%v %q (hint: the record %s cannot be read (%s): fix it, or devbox rm -f %s removes that box; devbox ls lists your boxes)", ErrNotFound, e.name, e.b.Path, e.b.Reason, e.id)
}

func (e *unreadableError) Unwrap() []error { return []error{ErrNotFound, e.b} }

// Get returns the usable box named name (or whose id starts with name): a
// broken record is an error (a *BrokenError) that names its file.
func (s *Store) Get(name string) (*Record, error) {
	r, err := s.Find(name)
	if err != nil {
		return nil, err
	}
	if r.Problem != nil {
		return nil, r.Problem
	}
	return r, nil
}

// Names returns the box names (for completion).
func (s *Store) Names() []string {
	all, _ := s.List()
	out := make([]string, len(all))
	for i, r := range all {
		out[i] = r.Name
	}
	return out
}

// Create writes a new record. It fails when the name is taken; callers
// hold the "boxes" lock.
func (s *Store) Create(r *Record) error {
	r.Version = RecordVersion
	if err := r.Check(r.ID); err != nil {
		return fmt.Errorf("box %s: %w", r.Name, err)
	}
	if _, err := s.Find(r.Name); err == nil {
		return fmt.Errorf("a box named %q already exists (hint: devbox shell %s enters it; devbox rm %s removes it)", r.Name, r.Name, r.Name)
	}
	dir := s.BoxDir(r.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating box directory: %w", err)
	}
	if r.NoProvision {
		if err := s.SaveProvision(r); err != nil {
			return err
		}
	}
	return s.Save(r)
}

// SaveProvision rewrites box r's provision.json atomically.
func (s *Store) SaveProvision(r *Record) error {
	if r.Problem != nil {
		return r.Problem
	}
	b, err := json.MarshalIndent(ProvisionRecord{NoProvision: r.NoProvision, Provision: r.Provision}, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.BoxDir(r.ID), provisionFile), b)
}

// Save rewrites a record atomically.
func (s *Store) Save(r *Record) error {
	if r.Problem != nil {
		return r.Problem // a stand-in: writing it would lose the file
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.BoxDir(r.ID), "box.json"), b)
}

// writeAtomic replaces the file p with b (temp file, fsync, rename).
func writeAtomic(p string, b []byte) error {
	tmp := p + ".tmp"
	// A link planted at tmp is removed, not written through.
	f, err := safefile.Create(tmp, 0, 0o600)
	if err != nil {
		return fmt.Errorf("writing box record: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing box record: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	return os.Rename(tmp, p)
}

// State describes whether a box runs.
type State struct {
	Running  bool   `json:"running"`
	InitPID  int    `json:"initPid,omitempty"`
	Sessions int    `json:"sessions"`
	Socket   string `json:"socket,omitempty"`
}

// Running reports whether box id's agent answers.
func (s *Store) Running(id string) bool {
	c, err := net.DialTimeout("unixpacket", s.SocketPath(id), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// InitPID returns the host pid of a running box's init as its init.pid
// says, or 0. For display only: SignalInit is what acts on it.
func (s *Store) InitPID(id string) int {
	rec, err := s.readInit(id)
	if err != nil {
		return 0
	}
	return rec.PID
}

// Damage is what CheckAll found wrong with a box.
type Damage struct {
	Name, Issue string
}

// CheckAll checks every box: its record is usable and every layer it
// stacks is in the store (hasLayer, by chain ID).
func (s *Store) CheckAll(hasLayer func(chain string) bool) ([]Damage, int, error) {
	recs, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	var out []Damage
	for _, r := range recs {
		if r.Problem != nil {
			out = append(out, Damage{Name: r.Name, Issue: r.Problem.Error()})
			continue
		}
		missing := func(l string) bool {
			// A pending freeze's layer is made by the next start.
			return !hasLayer(l) && (r.Pending == nil || l != r.Pending.Layer)
		}
		for _, l := range r.Lowers {
			if missing(l) {
				out = append(out, Damage{Name: r.Name, Issue: fmt.Sprintf("its image layer %s is missing (hint: devbox pull %s restores it when the image still has it; otherwise devbox rm %s)", l, r.Image, r.Name)})
				break
			}
		}
		for _, sn := range r.Snapshots {
			if i := slices.IndexFunc(sn.Lowers, missing); i >= 0 {
				out = append(out, Damage{Name: r.Name, Issue: fmt.Sprintf("the layer %s of its snapshot %s is missing (hint: devbox snapshot --rm %s %s forgets the snapshot)", sn.Lowers[i], sn.Tag, r.Name, sn.Tag)})
			}
		}
	}
	return out, len(recs), nil
}

// assembledFile is an assembled box's definition (package boxfile).
const assembledFile = "assemble.json"

// SaveAssembled writes box id's assemble.json atomically.
func (s *Store) SaveAssembled(id string, b []byte) error {
	return writeAtomic(filepath.Join(s.BoxDir(id), assembledFile), b)
}

// ReadAssembled reads box id's assemble.json (fs.ErrNotExist: the box was
// not made by devbox assemble), without following a link.
func (s *Store) ReadAssembled(id string) ([]byte, error) {
	return readRecord(filepath.Join(s.BoxDir(id), assembledFile))
}
