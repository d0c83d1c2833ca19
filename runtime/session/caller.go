package session

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"time"

	"github.com/devbox-dev/devbox/internal/safefile"
	"golang.org/x/sys/unix"
)

// A Caller record is what the CLI read of its caller besides a box — the
// configuration file's settings a session takes and the caller's identity
// (id mapping and account) — with the configuration file's content, the
// identity of every file the identity came from and the variables it was
// read with. devbox's front serves a session with it, without a TOML
// reader or the account and id-range parsers, only while the
// configuration file has that content (or is still absent), every other
// file is still exactly that version and those variables have those
// values; anything else sends it to the CLI, which reads everything again
// and records it anew (docs/architecture.md, "Front").
type Caller struct {
	Config ConfigSeen `json:"config"`
	// Files are the files Ident was read from, as they were.
	Files []Stamp `json:"files"`
	// Env are the variables Ident was read with ("" when unset).
	Env   map[string]string `json:"env"`
	Ident Ident             `json:"ident"`
}

// ConfigSeen is what a session takes from the configuration file at
// Path, as the CLI read it from Content (Exists false: there was no file,
// the defaults). The front compares the file's content, not its
// identity: a file edited a moment before is as good as an old one.
type ConfigSeen struct {
	Path          string `json:"path"`
	Exists        bool   `json:"exists"`
	Content       []byte `json:"content"`
	StoreRoot     string `json:"storeRoot,omitempty"`
	ProvisionAuto *bool  `json:"provisionAuto,omitempty"`
}

// maxConfig bounds the configuration file a caller record keeps.
const maxConfig = 64 << 10

// Stamp is one file's identity at Path, zero when it did not exist.
type Stamp struct {
	Path string `json:"path"`
	File FileID `json:"file"`
}

// Ident is the caller's identity as a session needs it: the id mapping
// (rootless/idmap: single-ID mode, its warning) and the account.
type Ident struct {
	UID     int     `json:"uid"`
	GID     int     `json:"gid"`
	Single  bool    `json:"single"`
	Warning string  `json:"warning,omitempty"`
	Account Account `json:"account"`
}

// IdentFiles are the files the caller's identity is read from: the
// account (os/user without cgo: passwd, group; HostAccount's login
// shell) and the subordinate ranges (rootless/idmap: nsswitch.conf
// decides between the files and getsubids).
var IdentFiles = []string{"/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/subuid", "/etc/subgid"}

// IdentEnv are the variables the identity is read with: USER and SHELL
// are fallbacks, HOME wins over the passwd entry, DEVBOX_SUBIDS=none turns
// the ranges off.
var IdentEnv = []string{"USER", "HOME", "SHELL", "DEVBOX_SUBIDS"}

// settleTime is how old a file's last change must be for its identity to
// be recorded: a change within the same tick of the file system's clock
// could leave size and times as they were ("racily clean" in git's
// words); a change after this one moves ctime past what was recorded.
var settleTime = 2 * time.Second

// callerFile is where the record for the configuration file at cfgPath
// lives under the runtime directory base: one per configuration path, so
// that sessions with two configurations (DEVBOX_CONFIG) do not replace
// each other's.
func callerFile(base, cfgPath string) string {
	h := fnv.New128a()
	h.Write([]byte(cfgPath))
	return filepath.Join(base, "front", callerPrefix+hex.EncodeToString(h.Sum(nil)))
}

// callerPrefix starts a caller record's name (a ticket's is all hex).
const callerPrefix = "caller-"

// NoteCaller writes the Caller record under the runtime directory base:
// it reads the configuration file at cfgPath and has config decode that
// content; it stamps IdentFiles, calls ident to read them (again: what
// the record says must be what these files say), and stamps them once
// more. Nothing is recorded (and nil returned) when a file changed
// meanwhile or too recently, when ident says its result depends on more
// than the files (getsubids), or when reading fails: the front then
// leaves sessions to the CLI.
func NoteCaller(base, cfgPath string, config func(content []byte, exists bool) (ConfigSeen, error), ident func() (Ident, bool, error)) error {
	content, exists, err := readConfig(cfgPath)
	if err != nil {
		return nil
	}
	cs, err := config(content, exists)
	if err != nil {
		return nil
	}
	now := time.Now()
	before, err := stamps(IdentFiles)
	if err != nil {
		return nil
	}
	for _, s := range before {
		if s.File != (FileID{}) && now.UnixNano()-s.File.Ctime < int64(settleTime) {
			return nil
		}
	}
	env := map[string]string{}
	for _, k := range IdentEnv {
		env[k] = os.Getenv(k)
	}
	id, ok, err := ident()
	if err != nil || !ok {
		return nil
	}
	after, err := stamps(IdentFiles)
	if err != nil || !sameStamps(before, after) {
		return nil
	}
	cs.Path, cs.Exists, cs.Content = cfgPath, exists, content
	c := Caller{Config: cs, Files: before, Env: env, Ident: id}
	b := c.encode()
	p := callerFile(base, cfgPath)
	if old, _, err := readFile(p); err == nil && bytes.Equal(old, b) {
		return nil // as it is
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return safefile.WriteFile(p, b, 0o600)
}

// readConfig reads the configuration file at path as the CLI does
// (following links), at most maxConfig bytes of a regular file; exists is
// false when there is none.
func readConfig(path string) (content []byte, exists bool, err error) {
	content, _, err = readRegular(path, false)
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}
	if err == nil && len(content) > maxConfig {
		err = errors.New(path + " is too large for the caller record")
	}
	return content, err == nil, err
}

// Recall returns the Caller record under the runtime directory base while
// it holds for this process: the configuration file at cfgPath has the
// recorded content, every other file in it is exactly as recorded, the variables have the recorded
// values, and the uid and gid are this process's. An error says why not
// (the front's trace shows it).
func Recall(base, cfgPath string) (Caller, error) {
	b, _, err := readFile(callerFile(base, cfgPath))
	if err != nil {
		return Caller{}, err
	}
	c, err := decodeCaller(b)
	if err != nil {
		return Caller{}, fmt.Errorf("caller record: %w", err)
	}
	if err := c.holds(cfgPath); err != nil {
		return Caller{}, err
	}
	return c, nil
}

// holds checks c against this process and the files as they are now.
func (c *Caller) holds(cfgPath string) error {
	if c.Config.Path != cfgPath {
		return errors.New("another configuration file")
	}
	if c.Ident.UID != os.Getuid() || c.Ident.GID != os.Getgid() {
		return errors.New("another user's record")
	}
	if len(c.Files) != len(IdentFiles) || len(c.Env) != len(IdentEnv) {
		return errors.New("another version's record")
	}
	for _, k := range IdentEnv {
		if v, ok := c.Env[k]; !ok || v != os.Getenv(k) {
			return errors.New(k + " changed")
		}
	}
	if content, exists, err := readConfig(cfgPath); err != nil || exists != c.Config.Exists || !bytes.Equal(content, c.Config.Content) {
		return errors.New(cfgPath + " changed")
	}
	for i, s := range c.Files {
		if s.Path != IdentFiles[i] {
			return errors.New("another version's record")
		}
		if id, err := stamp(s.Path); err != nil || id != s.File {
			return errors.New(s.Path + " changed")
		}
	}
	return nil
}

// stamps stamps each of paths.
func stamps(paths []string) ([]Stamp, error) {
	out := make([]Stamp, len(paths))
	for i, p := range paths {
		id, err := stamp(p)
		if err != nil {
			return nil, err
		}
		out[i] = Stamp{Path: p, File: id}
	}
	return out, nil
}

func sameStamps(a, b []Stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// stamp returns the identity of the file at path as a reader that follows
// links sees it (the account files are read so),
// zero when there is no such file. Another error (a loop, no permission)
// is an error: the readers would fail differently.
func stamp(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if err == unix.ENOENT {
			return FileID{}, nil
		}
		return FileID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return idOfStat(&st), nil
}
