package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"
)

// Kinds of export.
const (
	KindApp     = "app"
	KindBin     = "bin"
	KindService = "service"
)

// Item is one exported thing, as recorded in the box's exports.json and
// listed by `devbox export NAME --list --json`.
type Item struct {
	Kind   string `json:"kind"`           // app, bin or service
	Name   string `json:"name"`           // the app's desktop id, the tool's or unit's name
	Source string `json:"source"`         // the file in the box it came from
	Path   string `json:"path"`           // the file written on the host
	Icon   string `json:"icon,omitempty"` // app: the icon copied to the host
}

type manifest struct {
	Version int    `json:"version"`
	Items   []Item `json:"items"`
}

const manifestName = "exports.json"

// maxManifest bounds what is read of exports.json.
const maxManifest = 1 << 20

// Load returns what box directory boxDir records as exported. The record
// is input like a box record (a dev box writes the store when it is under
// the home): a regular file opened without following a link, at most
// maxManifest bytes, strict JSON of version 1, and only items devbox would
// have written (checkItem); anything else is an error that names the file.
// Items are checked again before anything is removed.
func Load(boxDir string) ([]Item, error) {
	p := filepath.Join(boxDir, manifestName)
	b, err := readManifest(p)
	if errors.Is(err, os.ErrNotExist) {
		return []Item{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("reading %s: trailing data", p)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("reading %s: unknown version %d", p, m.Version)
	}
	for _, it := range m.Items {
		if err := checkItem(it); err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
	}
	if m.Items == nil {
		m.Items = []Item{}
	}
	return m.Items, nil
}

func readManifest(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errors.New("it is a symbolic link")
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("larger than %d bytes", maxManifest)
	}
	return b, nil
}

// checkItem reports what in it devbox would not have written: an unknown
// kind, a name that is not a file name devbox derives, a path or icon that
// is not absolute and clean, a control character anywhere (C0, DEL or C1:
// --list prints them to a terminal).
func checkItem(it Item) error {
	switch it.Kind {
	case KindApp, KindBin, KindService:
	default:
		return fmt.Errorf("an item of unknown kind %q", it.Kind)
	}
	if !validName(it.Name) {
		return fmt.Errorf("item name %q is not one devbox writes", it.Name)
	}
	for _, f := range []struct{ what, v string }{{"path", it.Path}, {"source", it.Source}, {"icon", it.Icon}} {
		if strings.ContainsFunc(f.v, unicode.IsControl) {
			return fmt.Errorf("item %s has a control character in its %s", it.Name, f.what)
		}
		if (f.v != "" || f.what != "icon") && (!filepath.IsAbs(f.v) || filepath.Clean(f.v) != f.v) {
			return fmt.Errorf("item %s: %s %q is not a clean absolute path", it.Name, f.what, f.v)
		}
	}
	return nil
}

func save(boxDir string, items []Item) error {
	if items == nil {
		items = []Item{}
	}
	b, err := json.MarshalIndent(manifest{Version: 1, Items: items}, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(boxDir, manifestName), append(b, '\n'), 0o600)
}

// writeAtomic writes path by temp file + rename in its directory.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}

// markOf returns the box id a file written by devbox carries ("" when the
// file is not devbox's, is not a regular file or cannot be read). Only the
// file itself is looked at, never a link's target.
func markOf(path string) string {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimPrefix(sc.Bytes(), []byte("# "))
		if v, ok := bytes.CutPrefix(line, []byte(markKey+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// place writes content at path unless a file that is not this box's
// export is there.
func place(path, boxID string, content []byte, mode os.FileMode) error {
	if _, err := os.Lstat(path); err == nil {
		if markOf(path) != boxID {
			return fmt.Errorf("%s exists and was not exported from this box (hint: remove it, or export under another name or directory)", path)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeAtomic(path, content, mode)
}

// removeMarked removes path when it is a regular file carrying boxID's
// mark; a file that is gone counts as removed. It reports what it left.
func removeMarked(path, boxID string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if markOf(path) != boxID {
		return fmt.Errorf("left %s: it is no longer the file devbox exported", path)
	}
	return os.Remove(path)
}

// removeIcon removes a copied icon: only a regular file directly in
// iconDir whose name starts with the box's prefix.
func removeIcon(path, iconDir, prefix string) error {
	if path == "" {
		return nil
	}
	if filepath.Dir(path) != iconDir || !strings.HasPrefix(filepath.Base(path), prefix) {
		return fmt.Errorf("left %s: not an icon devbox copied", path)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("left %s: not an icon devbox copied", path)
	}
	return os.Remove(path)
}
