package box

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/devbox-dev/devbox/runtime/session"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/runtime"
	"github.com/devbox-dev/devbox/runtime/device"
	"golang.org/x/sys/unix"
)

// maxRecordSize bounds what is read of a box.json: a record is a few
// kilobytes; anything near this is not one.
const maxRecordSize = 1 << 20

// BrokenError says why a box's record cannot be used. The box is still
// listed (devbox ls shows it as broken) and can be stopped and removed,
// but it is never started: its record is input like any other file, and a
// hand-edited or damaged one must not decide what is mounted.
type BrokenError struct {
	Path   string // the record's file
	Name   string // the box's name when the record gives a valid one, else its id
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("box record %s: %s (hint: fix the file, or devbox rm -f %s removes the box)", e.Path, e.Reason, e.Name)
}

// IsBroken reports whether err says a box's record is unusable.
func IsBroken(err error) bool {
	var b *BrokenError
	return errors.As(err, &b)
}

// ParseRecord decodes and checks the record of box directory id (its
// file path is only used in errors). Unknown fields, trailing data, wrong
// JSON types and any value that fails Check are refused.
func ParseRecord(b []byte, id, path string) (*Record, error) {
	broken := func(name, format string, a ...any) error {
		return &BrokenError{Path: path, Name: name, Reason: fmt.Sprintf(format, a...)}
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		// The name, when the JSON gives a valid one, makes the hint usable.
		var n struct{ Name string }
		_ = json.Unmarshal(b, &n)
		name := id
		if runtime.ValidateName(n.Name) == nil {
			name = n.Name
		}
		return &r, broken(name, "not a valid record: %s", jsonReason(err))
	}
	if dec.More() {
		return &r, broken(id, "trailing data after the record")
	}
	name := r.Name
	if runtime.ValidateName(name) != nil {
		name = id
	}
	if err := r.Check(id); err != nil {
		return &r, broken(name, "%v", err)
	}
	return &r, nil
}

// provisionFile holds a box's provisioning settings and state.
const provisionFile = "provision.json"

// ProvisionRecord is the content of provision.json.
type ProvisionRecord struct {
	NoProvision bool             `json:"noProvision,omitempty"`
	Provision   *provision.State `json:"provision,omitempty"`
}

// readProvision fills r's provisioning fields from dir/provision.json (a
// box without one was not provisioned yet). The file is input like the
// record: read without following a link, strictly decoded, checked.
func readProvision(dir string, r *Record) error {
	path := filepath.Join(dir, provisionFile)
	b, id, err := readRecordID(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &BrokenError{Path: path, Name: r.Name, Reason: err.Error()}
	}
	var p ProvisionRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return &BrokenError{Path: path, Name: r.Name, Reason: "not a valid provisioning record: " + jsonReason(err)}
	}
	if dec.More() {
		return &BrokenError{Path: path, Name: r.Name, Reason: "trailing data after the record"}
	}
	if p.Provision != nil {
		if err := p.Provision.Check(); err != nil {
			return &BrokenError{Path: path, Name: r.Name, Reason: err.Error()}
		}
	}
	r.NoProvision, r.Provision, r.ProvisionFile = p.NoProvision, p.Provision, id
	return nil
}

// jsonReason shortens encoding/json's messages to what a user can act on.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	case "int", "int64", "uint32", "uint64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return k
}

// Check reports the first value of r that devbox would not have written
// for box directory id. It is the one place records are validated: every
// read goes through it (List, Get), and Create checks a new record with it
// before writing.
func (r *Record) Check(id string) error {
	switch {
	case r.Version != RecordVersion:
		return fmt.Errorf("version %d, this devbox understands %d (a newer devbox wrote it?)", r.Version, RecordVersion)
	case !validID(id):
		return fmt.Errorf("directory name %q is not a box id", id)
	case r.ID != id:
		return fmt.Errorf("id %q does not match its directory %q", r.ID, id)
	}
	if err := runtime.ValidateName(r.Name); err != nil {
		return fmt.Errorf("name %q is not a valid box name", r.Name)
	}
	if r.ImageID != "" && !validDigest(r.ImageID) {
		return fmt.Errorf("imageID %q is not a sha256 digest", r.ImageID)
	}
	if len(r.Lowers) == 0 {
		return errors.New("no image layers (lowers)")
	}
	for _, l := range r.Lowers {
		if !validHex64(l) {
			return fmt.Errorf("lower %q is not a layer id of this store (64 hex digits)", l)
		}
	}
	if err := CheckHostname(r.Hostname); err != nil {
		return err
	}
	switch r.Net {
	case "", network.ModeSlirp, network.ModeNone, network.ModeHost, network.DriverGvisor, network.DriverPasta, network.DriverSlirp4netns:
	default:
		return fmt.Errorf("net %q is not a network mode", r.Net)
	}
	if _, err := r.Security(""); err != nil {
		return err
	}
	if r.Home != "" {
		if err := hostPath("home", r.Home); err != nil {
			return err
		}
	}
	for i, v := range r.Volumes {
		if err := hostPath(fmt.Sprintf("volumes[%d].source", i), v.Source); err != nil {
			return err
		}
		if err := hostPath(fmt.Sprintf("volumes[%d].target", i), v.Target); err != nil {
			return err
		}
		if v.Target == "/" {
			return fmt.Errorf("volumes[%d].target is the box's /", i)
		}
	}
	for _, kv := range r.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsRune(kv, 0) {
			return fmt.Errorf("env entry %q is not KEY=VALUE", kv)
		}
	}
	if r.Grace < 0 {
		return fmt.Errorf("grace %d is negative", r.Grace)
	}
	if err := r.Limits.Validate(); err != nil {
		return fmt.Errorf("limits: %v", err)
	}
	for i, d := range r.Devices {
		if err := device.CheckPath(d); err != nil {
			return fmt.Errorf("devices[%d]: %v", i, err)
		}
	}
	for i, h := range r.OnStart {
		if strings.TrimSpace(h) == "" || strings.ContainsRune(h, 0) {
			return fmt.Errorf("onStart[%d] is empty or has a NUL byte", i)
		}
	}
	if err := r.checkSnapshots(); err != nil {
		return err
	}
	for _, p := range r.Publish {
		if p == "" || strings.ContainsFunc(p, isControl) {
			return fmt.Errorf("publish entry %q is not a port", p)
		}
	}
	return nil
}

// hostPath checks a path the record binds: absolute, clean (no "." or
// ".." elements, no doubled or trailing slashes) and without control
// characters.
func hostPath(what, p string) error {
	switch {
	case !filepath.IsAbs(p):
		return fmt.Errorf("%s %q is not an absolute path", what, p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("%s %q is not a clean path (it would be %q)", what, p, filepath.Clean(p))
	case strings.ContainsFunc(p, isControl):
		return fmt.Errorf("%s %q contains control characters", what, p)
	}
	return nil
}

// CheckHostname accepts what a box's /etc/hosts and /etc/hostname can
// carry: 1 to 64 letters, digits, '-', '_' and '.'.
func CheckHostname(h string) error {
	ok := len(h) > 0 && len(h) <= 64
	for i := 0; ok && i < len(h); i++ {
		c := h[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
	}
	if !ok {
		return fmt.Errorf("hostname %q is not a host name (letters, digits, '-', '_', '.'; at most 64)", h)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validID accepts box ids as runtime.NewID makes them (and the 12 to 64
// lowercase hex digits runtime.Spec allows).
func validID(id string) bool {
	if len(id) < 12 || len(id) > 64 {
		return false
	}
	return isLowerHex(id)
}

func validHex64(s string) bool { return len(s) == 64 && isLowerHex(s) }

func validDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	return ok && validHex64(h)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// readRecord reads dir/box.json without following a symlink and without
// reading more than maxRecordSize.
func readRecord(path string) ([]byte, error) {
	b, _, err := readRecordID(path)
	return b, err
}

// readRecordID is readRecord that also returns the identity of the file
// read (for the front's session tickets, runtime/session).
func readRecordID(path string) ([]byte, session.FileID, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if err == unix.ELOOP {
			return nil, session.FileID{}, errors.New("is a symbolic link")
		}
		return nil, session.FileID{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, session.FileID{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, session.FileID{}, errors.New("is not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return nil, session.FileID{}, err
	}
	if len(b) > maxRecordSize {
		return nil, session.FileID{}, fmt.Errorf("is larger than %d bytes", maxRecordSize)
	}
	return b, session.IDOf(fi), nil
}

// Security is the confinement of the box's commands: the default
// capability set changed by CapAdd/CapDrop and the default seccomp filter,
// as SecurityOpt says. A dev box — its home is userHome, the user's own —
// runs the user's own tools: setuid programs (sudo) work, and their
// sandboxes may build user namespaces (Security.Nested). A box with a home
// of its own is a sandbox: no_new_privs and the strict filter, unless
// SecurityOpt says no-new-privileges=false.
func (r *Record) Security(userHome string) (runtime.Security, error) {
	dev := IsDevBox(r, userHome)
	sec, err := runtime.ParseSecurity(r.CapAdd, r.CapDrop, r.SecurityOpt, dev)
	if err != nil {
		return sec, err
	}
	sec.Nested = dev
	return sec, nil
}
