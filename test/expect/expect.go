// Package expect loads the expected-filesystem JSON files written by
// test/mkimages (see test/README.md for the schema) and compares an unpacked
// root filesystem on disk against them. It only uses the standard library.
package expect

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// File is one expectation file (schema 1).
type File struct {
	Schema     int      `json:"schema"`
	Repository string   `json:"repository"`
	Tags       []string `json:"tags"`
	References []string `json:"references"`
	MediaType  string   `json:"media_type"`
	Digest     string   `json:"digest"`
	Images     []Image  `json:"images"`
}

// Image is one platform image of a File.
type Image struct {
	Platform     string           `json:"platform"`
	Digest       string           `json:"digest"`
	MediaType    string           `json:"media_type"`
	ConfigDigest string           `json:"config_digest"`
	Cmd          []string         `json:"cmd,omitempty"`
	Env          []string         `json:"env,omitempty"`
	Layers       []Layer          `json:"layers"`
	Entries      map[string]Entry `json:"entries"`
	Skipped      []Skipped        `json:"skipped,omitempty"`
}

// Layer is one layer descriptor.
type Layer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diff_id"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
}

// Entry is the expected state of one path.
type Entry struct {
	Type          string            `json:"type"`
	Mode          string            `json:"mode"`
	UID           int               `json:"uid"`
	GID           int               `json:"gid"`
	Mtime         int64             `json:"mtime"`
	Size          *int64            `json:"size,omitempty"`
	SHA256        string            `json:"sha256,omitempty"`
	Target        string            `json:"target,omitempty"`
	Xattrs        map[string]string `json:"xattrs,omitempty"`
	HardlinkGroup string            `json:"hardlink_group,omitempty"`
}

// Skipped is a tar entry that unpackers must not create.
type Skipped struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Layer  int    `json:"layer"`
	Reason string `json:"reason"`
}

// Load reads an expectation file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Schema != 1 {
		return nil, fmt.Errorf("%s: unsupported schema %d", path, f.Schema)
	}
	return &f, nil
}

// PathFor returns the file name mkimages uses for repo:tag in dir.
func PathFor(dir, repo, tag string) string {
	return filepath.Join(dir, strings.ReplaceAll(repo, "/", "_")+"_"+tag+".json")
}

// HostPlatform is the platform string of the running binary, e.g. "linux/amd64".
func HostPlatform() string {
	switch runtime.GOARCH {
	case "arm64":
		return "linux/arm64/v8"
	case "arm":
		return "linux/arm/v7"
	}
	return "linux/" + runtime.GOARCH
}

// Image returns the image for platform ("" means the only image, or the host's).
func (f *File) Image(platform string) (*Image, error) {
	if platform == "" {
		if len(f.Images) == 1 {
			return &f.Images[0], nil
		}
		platform = HostPlatform()
	}
	for i := range f.Images {
		if f.Images[i].Platform == platform {
			return &f.Images[i], nil
		}
	}
	return nil, fmt.Errorf("%s: no image for platform %s", f.Repository, platform)
}

// Options tune Compare.
type Options struct {
	// MapUID and MapGID turn on-disk ids into in-image ids (for a rootfs
	// unpacked in a user namespace and inspected from the host). nil: identity.
	MapUID, MapGID func(int) int
	// IgnoreOwners skips uid/gid checks entirely.
	IgnoreOwners bool
	// CheckDirMtime also compares directory mtimes (off by default: creating
	// children changes them unless the unpacker restores them afterwards).
	CheckDirMtime bool
	// IgnoreMtime skips all mtime checks.
	IgnoreMtime bool
	// XattrPrefixes limits the compared xattrs; nil means {"user."}.
	XattrPrefixes []string
	// AllowExtra reports whether an unexpected on-disk path is fine (e.g.
	// mount points a runtime created). nil: no extras allowed.
	AllowExtra func(path string) bool
	// SkippedMayExist accepts skipped entries (device nodes) on disk, as a
	// root unpacker creates them.
	SkippedMayExist bool
}

type actual struct {
	Entry
	dev, ino uint64
	nlink    uint64
}

func typeOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeCharDevice != 0:
		return "char"
	case m&fs.ModeDevice != 0:
		return "block"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "unknown"
}

func listXattrs(p string) (map[string]string, error) {
	size, err := syscall.Listxattr(p, nil)
	if err != nil || size == 0 {
		if errors.Is(err, syscall.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, size)
	size, err = syscall.Listxattr(p, buf)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vs, err := syscall.Getxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, vs)
		vs, err = syscall.Getxattr(p, name, v)
		if err != nil {
			return nil, err
		}
		out[name] = string(v[:vs])
	}
	return out, nil
}

// scan reads the rootfs into the same shape as the expectations (ids as on disk).
func scan(rootfs string) (map[string]actual, error) {
	out := map[string]actual{}
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		perm := uint32(st.Mode) & 07777
		a := actual{
			Entry: Entry{
				Type:  typeOf(fi.Mode()),
				Mode:  fmt.Sprintf("%04o", perm),
				UID:   int(st.Uid),
				GID:   int(st.Gid),
				Mtime: st.Mtim.Sec,
			},
			dev: uint64(st.Dev), ino: st.Ino, nlink: uint64(st.Nlink),
		}
		switch a.Type {
		case "file":
			size := fi.Size()
			a.Size = &size
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			a.SHA256 = hex.EncodeToString(h.Sum(nil))
		case "symlink":
			if a.Target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if a.Type == "file" || a.Type == "dir" {
			if a.Xattrs, err = listXattrs(p); err != nil {
				return fmt.Errorf("xattrs of %s: %w", p, err)
			}
		}
		out["/"+filepath.ToSlash(rel)] = a
		return nil
	})
	return out, err
}

func decodeXattr(v string) string {
	if b, ok := strings.CutPrefix(v, "base64:"); ok {
		if d, err := base64.StdEncoding.DecodeString(b); err == nil {
			return string(d)
		}
	}
	return v
}

// Compare checks rootfs against img and returns one message per difference
// (sorted; empty means identical under opts).
func Compare(img *Image, rootfs string, opts Options) ([]string, error) {
	act, err := scan(rootfs)
	if err != nil {
		return nil, err
	}
	mapUID, mapGID := opts.MapUID, opts.MapGID
	if mapUID == nil {
		mapUID = func(i int) int { return i }
	}
	if mapGID == nil {
		mapGID = func(i int) int { return i }
	}
	prefixes := opts.XattrPrefixes
	if prefixes == nil {
		prefixes = []string{"user."}
	}
	wanted := func(name string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	skipped := map[string]bool{}
	for _, s := range img.Skipped {
		skipped[s.Path] = true
		if _, ok := act[s.Path]; ok && !opts.SkippedMayExist {
			add("%s: %s entry must be skipped but exists", s.Path, s.Type)
		}
	}
	for p, want := range img.Entries {
		got, ok := act[p]
		if !ok {
			add("%s: missing (want %s)", p, want.Type)
			continue
		}
		if got.Type != want.Type {
			add("%s: type %s, want %s", p, got.Type, want.Type)
			continue
		}
		if want.Type != "symlink" && got.Mode != want.Mode {
			add("%s: mode %s, want %s", p, got.Mode, want.Mode)
		}
		if !opts.IgnoreOwners {
			if u, g := mapUID(got.UID), mapGID(got.GID); u != want.UID || g != want.GID {
				add("%s: owner %d:%d, want %d:%d", p, u, g, want.UID, want.GID)
			}
		}
		if !opts.IgnoreMtime && (want.Type != "dir" || opts.CheckDirMtime) && got.Mtime != want.Mtime {
			add("%s: mtime %d, want %d", p, got.Mtime, want.Mtime)
		}
		switch want.Type {
		case "file":
			if want.Size != nil && *got.Size != *want.Size {
				add("%s: size %d, want %d", p, *got.Size, *want.Size)
			} else if got.SHA256 != want.SHA256 {
				add("%s: sha256 %s, want %s", p, got.SHA256, want.SHA256)
			}
		case "symlink":
			if got.Target != want.Target {
				add("%s: symlink target %q, want %q", p, got.Target, want.Target)
			}
		}
		if want.Type == "file" || want.Type == "dir" {
			for k, v := range want.Xattrs {
				if !wanted(k) {
					continue
				}
				if gv, ok := got.Xattrs[k]; !ok {
					add("%s: xattr %s missing", p, k)
				} else if gv != decodeXattr(v) {
					add("%s: xattr %s = %q, want %q", p, k, gv, decodeXattr(v))
				}
			}
			for k := range got.Xattrs {
				if _, ok := want.Xattrs[k]; wanted(k) && !ok {
					add("%s: unexpected xattr %s", p, k)
				}
			}
		}
	}
	// Hardlinks: members of a group share one inode, and no two paths share an
	// inode unless they are in the same group.
	byInode := map[[2]uint64][]string{}
	for p, a := range act {
		if a.Type != "dir" {
			byInode[[2]uint64{a.dev, a.ino}] = append(byInode[[2]uint64{a.dev, a.ino}], p)
		}
	}
	groupInode := map[string][2]uint64{}
	for p, want := range img.Entries {
		got, ok := act[p]
		if !ok || want.HardlinkGroup == "" || got.Type != want.Type {
			continue
		}
		k := [2]uint64{got.dev, got.ino}
		if first, ok := groupInode[want.HardlinkGroup]; !ok {
			groupInode[want.HardlinkGroup] = k
		} else if first != k {
			add("%s: not hardlinked with %s", p, want.HardlinkGroup)
		}
	}
	for _, paths := range byInode {
		if len(paths) < 2 {
			continue
		}
		sort.Strings(paths)
		for _, p := range paths[1:] {
			g0, g := img.Entries[paths[0]].HardlinkGroup, img.Entries[p].HardlinkGroup
			if g0 == "" || g != g0 {
				add("%s: shares an inode with %s but should not", p, paths[0])
			}
		}
	}
	for p := range act {
		if _, ok := img.Entries[p]; ok || skipped[p] {
			continue
		}
		if opts.AllowExtra != nil && opts.AllowExtra(p) {
			continue
		}
		add("%s: unexpected %s", p, act[p].Type)
	}
	sort.Strings(diffs)
	return diffs, nil
}

// ParseIDMap parses "inside:outside:count[,...]" (the format of
// /proc/PID/uid_map, comma separated) into a function from on-disk (outside)
// ids to in-image (inside) ids; unmapped ids become -1.
func ParseIDMap(s string) (func(int) int, error) {
	type rng struct{ in, out, n int }
	var rs []rng
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(strings.TrimSpace(part), ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("bad id map %q", part)
		}
		var r [3]int
		for i, x := range f {
			v, err := strconv.Atoi(x)
			if err != nil {
				return nil, fmt.Errorf("bad id map %q: %w", part, err)
			}
			r[i] = v
		}
		rs = append(rs, rng{r[0], r[1], r[2]})
	}
	return func(id int) int {
		for _, r := range rs {
			if id >= r.out && id < r.out+r.n {
				return r.in + id - r.out
			}
		}
		return -1
	}, nil
}
