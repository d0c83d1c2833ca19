package main

// An independent, in-memory reference implementation of OCI layer
// application ("applying changesets" in the OCI image spec). It never touches
// the disk: it is the oracle that devbox's unpacker is compared against.
//
// Semantics, applied entry by entry, layer by layer:
//   - ".wh..wh..opq" in dir D hides every child of D that came from a lower
//     layer (children added by the same layer stay, whatever their order).
//   - ".wh.NAME" removes NAME (and everything below it) from lower layers.
//   - A directory entry over an existing directory only updates its metadata
//     (children are kept); any other entry over an existing path first removes
//     that path (recursively when it is a directory), so replacing one name of
//     a hardlink pair leaves the other name with the old inode and content.
//   - A hardlink entry shares the inode of its target, which may come from the
//     same or a lower layer. Metadata of a hardlink group is the inode's; a
//     hardlink header whose mode/owner/mtime differ from the target inode is
//     rejected as ambiguous (unpackers disagree on applying it).
//   - Char and block device entries are skipped (rootless unpackers cannot
//     create them); they are reported in "skipped".

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/devbox-dev/devbox/test/expect"
)

// The expectation file's schema is defined once, in test/expect, which
// reads what this program writes.
type (
	Expect      = expect.File
	ExpectImage = expect.Image
	LayerInfo   = expect.Layer
	Entry       = expect.Entry
	Skipped     = expect.Skipped
)

type inode struct {
	typ      string
	mode     int64
	uid, gid int
	mtime    int64
	target   string
	size     int64
	sum      string
	xattrs   map[string]string
}

type refFS struct {
	nodes   map[string]*inode // key: clean relative path ("etc/passwd")
	skipped []Skipped
}

func newRefFS() *refFS { return &refFS{nodes: map[string]*inode{}} }

// cleanName turns a tar name into a clean relative path ("" is the root).
func cleanName(name string) string {
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/")
}

func (fs *refFS) removeTree(p string) {
	delete(fs.nodes, p)
	prefix := p + "/"
	for k := range fs.nodes {
		if strings.HasPrefix(k, prefix) {
			delete(fs.nodes, k)
		}
	}
}

func (fs *refFS) checkParent(p, layerName string) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	n, ok := fs.nodes[dir]
	if !ok {
		return fmt.Errorf("%s: %s: parent directory %s missing (layers must carry their parents)", layerName, p, dir)
	}
	if n.typ != "dir" {
		return fmt.Errorf("%s: %s: parent %s is a %s", layerName, p, dir, n.typ)
	}
	return nil
}

// applyLayer applies one uncompressed layer tar (index is 1-based, for messages).
func (fs *refFS) applyLayer(raw []byte, index int) error {
	layerName := fmt.Sprintf("layer %d", index)
	tr := tar.NewReader(bytes.NewReader(raw))
	added := map[string]bool{} // paths created or touched by this layer
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", layerName, err)
		}
		p := cleanName(h.Name)
		if p == "" {
			continue // root directory metadata is not part of the expectation
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if base == ".wh..wh..opq" {
			prefix := dir + "/"
			if dir == "" {
				prefix = ""
			}
			for k := range fs.nodes {
				if strings.HasPrefix(k, prefix) && !added[k] {
					delete(fs.nodes, k)
				}
			}
			continue
		}
		if strings.HasPrefix(base, ".wh.") {
			victim := path.Join(dir, strings.TrimPrefix(base, ".wh."))
			if added[victim] {
				return fmt.Errorf("%s: whiteout %s hides an entry of the same layer", layerName, p)
			}
			fs.removeTree(victim)
			continue
		}
		switch h.Typeflag {
		case tar.TypeChar, tar.TypeBlock:
			t := "char"
			if h.Typeflag == tar.TypeBlock {
				t = "block"
			}
			fs.skipped = append(fs.skipped, Skipped{Path: "/" + p, Type: t, Layer: index, Reason: "device nodes are not created by rootless unpackers"})
			continue
		}
		if err := fs.checkParent(p, layerName); err != nil {
			return err
		}
		meta := func(n *inode) {
			n.mode = h.Mode & 07777
			n.uid, n.gid = h.Uid, h.Gid
			n.mtime = h.ModTime.Unix()
			n.xattrs = nil
			for k, v := range h.PAXRecords {
				if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
					if n.xattrs == nil {
						n.xattrs = map[string]string{}
					}
					n.xattrs[name] = v
				}
			}
		}
		old, exists := fs.nodes[p]
		if h.Typeflag == tar.TypeDir && exists && old.typ == "dir" {
			meta(old)
			added[p] = true
			continue
		}
		var n *inode
		switch h.Typeflag {
		case tar.TypeLink:
			t := cleanName(h.Linkname)
			target, ok := fs.nodes[t]
			if !ok {
				return fmt.Errorf("%s: hardlink %s -> %s: target missing", layerName, p, h.Linkname)
			}
			if target.typ == "dir" {
				return fmt.Errorf("%s: hardlink %s -> %s: target is a directory", layerName, p, h.Linkname)
			}
			if t == p {
				added[p] = true
				continue
			}
			// Unpackers disagree on whether a hardlink header's metadata is
			// applied to the shared inode; refuse images where it matters.
			if h.Mode&07777 != target.mode || h.Uid != target.uid || h.Gid != target.gid || h.ModTime.Unix() != target.mtime {
				return fmt.Errorf("%s: hardlink %s -> %s: header metadata (%04o %d:%d %d) differs from the target's (%04o %d:%d %d)",
					layerName, p, h.Linkname, h.Mode&07777, h.Uid, h.Gid, h.ModTime.Unix(), target.mode, target.uid, target.gid, target.mtime)
			}
			n = target
		case tar.TypeReg:
			n = &inode{typ: "file"}
			meta(n)
			sum := sha256.New()
			size, err := io.Copy(sum, tr)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", layerName, p, err)
			}
			n.size, n.sum = size, hex.EncodeToString(sum.Sum(nil))
		case tar.TypeDir:
			n = &inode{typ: "dir"}
			meta(n)
		case tar.TypeSymlink:
			n = &inode{typ: "symlink", target: h.Linkname}
			meta(n)
		case tar.TypeFifo:
			n = &inode{typ: "fifo"}
			meta(n)
		default:
			return fmt.Errorf("%s: %s: unsupported tar type %q", layerName, p, h.Typeflag)
		}
		if exists {
			fs.removeTree(p)
		}
		fs.nodes[p] = n
		added[p] = true
	}
}

// xattrValue renders an xattr value: UTF-8 text as is, anything else as
// "base64:" followed by the standard base64 encoding.
func xattrValue(v string) string {
	if utf8.ValidString(v) && !strings.ContainsRune(v, 0) && !strings.HasPrefix(v, "base64:") {
		return v
	}
	return "base64:" + base64.StdEncoding.EncodeToString([]byte(v))
}

// entries renders the merged view, keyed by absolute path.
func (fs *refFS) entries() map[string]Entry {
	groups := map[*inode][]string{}
	for p, n := range fs.nodes {
		groups[n] = append(groups[n], p)
	}
	out := make(map[string]Entry, len(fs.nodes))
	for p, n := range fs.nodes {
		e := Entry{
			Type:  n.typ,
			Mode:  fmt.Sprintf("%04o", n.mode),
			UID:   n.uid,
			GID:   n.gid,
			Mtime: n.mtime,
		}
		switch n.typ {
		case "file":
			size := n.size
			e.Size = &size
			e.SHA256 = n.sum
		case "symlink":
			e.Target = n.target
		}
		if len(n.xattrs) > 0 {
			e.Xattrs = map[string]string{}
			for k, v := range n.xattrs {
				e.Xattrs[k] = xattrValue(v)
			}
		}
		if g := groups[n]; len(g) > 1 {
			sort.Strings(g)
			e.HardlinkGroup = "/" + g[0]
		}
		out["/"+p] = e
	}
	return out
}

// referenceApply applies uncompressed layers in order and returns the merged view.
func referenceApply(layers [][]byte) (map[string]Entry, []Skipped, error) {
	fs := newRefFS()
	for i, raw := range layers {
		if err := fs.applyLayer(raw, i+1); err != nil {
			return nil, nil, err
		}
	}
	return fs.entries(), fs.skipped, nil
}
