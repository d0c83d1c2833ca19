package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// fixedTime is the mtime of every synthetic entry that does not ask for a
// specific one, and the "created" time of every image config and history
// entry. Fixed times make the builder reproducible.
var fixedTime = time.Unix(1704067200, 0).UTC() // 2024-01-01T00:00:00Z

// entry is one tar member of a synthetic layer.
type entry struct {
	Name     string // slash separated, relative, no leading "./"
	Type     byte   // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeFifo, TypeChar, TypeBlock
	Mode     int64  // permission and setuid/setgid/sticky bits
	UID, GID int
	Mtime    int64 // unix seconds; 0 means fixedTime unless ZeroTime
	ZeroTime bool  // use mtime 0 (the epoch) on purpose
	Link     string
	Data     []byte
	Xattrs   map[string]string
	Major    int64
	Minor    int64
}

func (e entry) header() *tar.Header {
	name := strings.TrimPrefix(e.Name, "/")
	if e.Type == tar.TypeDir && !strings.HasSuffix(name, "/") {
		name += "/"
	}
	mt := fixedTime
	if e.Mtime != 0 || e.ZeroTime {
		mt = time.Unix(e.Mtime, 0).UTC()
	}
	h := &tar.Header{
		Typeflag: e.Type,
		Name:     name,
		Linkname: e.Link,
		Mode:     e.Mode,
		Uid:      e.UID,
		Gid:      e.GID,
		ModTime:  mt,
		Devmajor: e.Major,
		Devminor: e.Minor,
	}
	if e.Type == tar.TypeReg {
		h.Size = int64(len(e.Data))
	}
	if len(e.Xattrs) > 0 {
		h.PAXRecords = map[string]string{}
		for k, v := range e.Xattrs {
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	return h
}

// buildTar writes the entries, sorted by name, as an uncompressed tar stream.
// Sorting by the full path puts every parent before its children; a hardlink
// must sort after its target if both are in the same layer.
func buildTar(entries []entry) ([]byte, error) {
	sorted := append([]entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return strings.TrimSuffix(sorted[i].Name, "/") < strings.TrimSuffix(sorted[j].Name, "/")
	})
	for i := 1; i < len(sorted); i++ {
		if strings.TrimSuffix(sorted[i].Name, "/") == strings.TrimSuffix(sorted[i-1].Name, "/") {
			return nil, fmt.Errorf("duplicate tar entry %q in one layer", sorted[i].Name)
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range sorted {
		if err := tw.WriteHeader(e.header()); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", e.Name, err)
		}
		if e.Type == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// normalizeTar rewrites an existing tar stream (e.g. the debootstrap rootfs)
// into a canonical form: names without "./", the root entry dropped, times
// truncated to seconds, no user/group names, atime/ctime dropped, and only
// xattr PAX records kept. Entry order is preserved.
func normalizeTar(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	tr := tar.NewReader(r)
	tw := tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		name = strings.TrimPrefix(name, "/")
		if name == "" || name == "." || name == "./" {
			continue // the root directory itself
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
			tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		default:
			return nil, fmt.Errorf("%s: unsupported tar type %q", h.Name, h.Typeflag)
		}
		link := h.Linkname
		if h.Typeflag == tar.TypeLink {
			link = strings.TrimPrefix(strings.TrimPrefix(link, "./"), "/")
		}
		nh := &tar.Header{
			Typeflag: h.Typeflag,
			Name:     name,
			Linkname: link,
			Mode:     h.Mode & 07777,
			Uid:      h.Uid,
			Gid:      h.Gid,
			ModTime:  time.Unix(h.ModTime.Unix(), 0).UTC(),
			Devmajor: h.Devmajor,
			Devminor: h.Devminor,
		}
		if h.Typeflag == tar.TypeReg {
			nh.Size = h.Size
		}
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if nh.PAXRecords == nil {
					nh.PAXRecords = map[string]string{}
				}
				nh.PAXRecords[k] = v
			}
		}
		if err := tw.WriteHeader(nh); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compression of a layer blob.
type compression int

const (
	compNone compression = iota
	compGzip
	compZstd
)

func compress(raw []byte, c compression) ([]byte, error) {
	var buf bytes.Buffer
	switch c {
	case compNone:
		return raw, nil
	case compGzip:
		// No name and a zero mtime in the gzip header: reproducible output.
		zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(raw); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case compZstd:
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(raw); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown compression %d", c)
	}
	return buf.Bytes(), nil
}

// blobLayer is a v1.Layer whose compressed and uncompressed bytes are both
// held in memory, so digests are computed exactly once from exactly the bytes
// that get pushed.
type blobLayer struct {
	raw, blob      []byte
	digest, diffID v1.Hash
	mt             types.MediaType
}

func newLayer(raw []byte, c compression, mt types.MediaType) (*blobLayer, error) {
	blob, err := compress(raw, c)
	if err != nil {
		return nil, err
	}
	return &blobLayer{raw: raw, blob: blob, digest: sha256Hash(blob), diffID: sha256Hash(raw), mt: mt}, nil
}

func sha256Hash(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

func (l *blobLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.raw)), nil
}
func (l *blobLayer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
