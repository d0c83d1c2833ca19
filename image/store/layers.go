package store

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/devbox-dev/devbox/image/unpack"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// UnpackJob is one layer to unpack. Jobs cross a process boundary as JSON.
type UnpackJob struct {
	Chain     v1.Hash  `json:"chain"`
	DiffID    v1.Hash  `json:"diffID"`
	Blob      v1.Hash  `json:"blob"`
	MediaType string   `json:"mediaType"`
	Lowers    []string `json:"lowers"` // chain hex of the layers below, top-most first
}

// UnpackRequest is what the unpack stage reads on stdin.
type UnpackRequest struct {
	Root              string      `json:"root"`
	Jobs              []UnpackJob `json:"jobs"`
	IgnoreChownErrors bool        `json:"ignoreChownErrors"`
}

// UnpackResult is what the unpack stage writes back.
type UnpackResult struct {
	Error    string `json:"error,omitempty"`
	Unsafe   bool   `json:"unsafe,omitempty"`
	Unpacked int    `json:"unpacked"`
}

// ErrUnsafeLayer marks a layer rejected as hostile.
var ErrUnsafeLayer = unpack.ErrUnsafePath

// UnpackLayers unpacks jobs in order (a layer may need its lowers to resolve
// hard links). It must run where Lchown to the image's ids works: inside the
// keep-id user namespace. Each layer is unpacked into tmp/ and renamed into
// layers/ under its lock; a layer already present is skipped.
func (s *Store) UnpackLayers(jobs []UnpackJob, opts unpack.Options) (int, error) {
	n := 0
	for _, j := range jobs {
		did, err := s.unpackOne(j, opts)
		if err != nil {
			return n, err
		}
		if did {
			n++
		}
	}
	return n, nil
}

func (s *Store) unpackOne(j UnpackJob, opts unpack.Options) (bool, error) {
	if s.HasLayer(j.Chain) {
		return false, nil
	}
	key := "layer-" + j.Chain.Hex
	unlock, err := s.LockKey(key)
	if err != nil {
		return false, err
	}
	defer unlock()
	if s.HasLayer(j.Chain) {
		return false, nil
	}
	// Debris of an earlier, killed attempt at this layer.
	if old, _ := filepath.Glob(filepath.Join(s.TmpDir(), key+"-*")); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(s.TmpDir(), key+"-")
	if err != nil {
		return false, storeErr("unpacking layer", err, s.Root)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return false, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	f, err := os.Open(s.BlobPath(j.Blob))
	if err != nil {
		return false, fmt.Errorf("unpacking layer %s: %w", j.Blob, err)
	}
	defer f.Close()
	r, closeR, err := decompress(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return false, fmt.Errorf("unpacking layer %s: %w", j.Blob, err)
	}
	defer closeR()
	h := sha256.New()
	o := opts
	o.Lowers = nil
	for _, l := range j.Lowers {
		o.Lowers = append(o.Lowers, filepath.Join(s.LayersDir(), l))
	}
	if _, err := unpack.Apply(tmp, io.TeeReader(r, h), o); err != nil {
		return false, fmt.Errorf("unpacking layer %s: %w", j.Blob, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != j.DiffID.Hex {
		return false, fmt.Errorf("unpacking layer %s: uncompressed digest sha256:%s does not match the image config's diff_id %s", j.Blob, got, j.DiffID)
	}
	if err := os.Rename(tmp, s.LayerDir(j.Chain)); err != nil {
		return false, storeErr("storing unpacked layer", err, s.Root)
	}
	ok = true
	return true, nil
}

// decompress sniffs gzip and zstd by their magic numbers (media types lie
// often enough) and returns a reader of the tar stream. Decompression runs in
// its own goroutine so it overlaps with writing files.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(4)
	var r io.Reader
	var closeFn func()
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		r, closeFn = zr, func() { zr.Close() }
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		r, closeFn = zr, zr.Close
	default:
		return br, func() {}, nil
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<20)
		_, err := io.CopyBuffer(pw, r, buf)
		pw.CloseWithError(err)
	}()
	return bufio.NewReaderSize(pr, 1<<20), func() {
		pr.CloseWithError(errors.New("closed"))
		<-done
		closeFn()
	}, nil
}

// UnpackMain is the body of the "unpack" stage: it reads an UnpackRequest on
// stdin, unpacks, and writes an UnpackResult to the file at fd 3.
func UnpackMain(result *os.File) int {
	var req UnpackRequest
	res := UnpackResult{}
	defer func() {
		_ = json.NewEncoder(result).Encode(res)
	}()
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		res.Error = "reading unpack request: " + err.Error()
		return 125
	}
	s := &Store{Root: req.Root}
	n, err := s.UnpackLayers(req.Jobs, unpack.Options{IgnoreChownErrors: req.IgnoreChownErrors})
	res.Unpacked = n
	if err != nil {
		res.Error = err.Error()
		res.Unsafe = errors.Is(err, unpack.ErrUnsafePath)
		return 1
	}
	return 0
}

// RemoveRequest is what the rmtree stage reads on stdin.
type RemoveRequest struct {
	Root  string   `json:"root"`
	Paths []string `json:"paths"`
}

// RemoveMain is the body of the "rmtree" stage: it reads a RemoveRequest on
// stdin and removes each path, after checking it is a store layer or
// temporary entry.
func RemoveMain() int {
	var req RemoveRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "devbox: reading paths:", err)
		return 125
	}
	s := &Store{Root: req.Root}
	rc := 0
	for _, p := range req.Paths {
		if err := s.CheckRemovable(p); err != nil {
			fmt.Fprintln(os.Stderr, "devbox:", err)
			rc = 125
			continue
		}
		if err := os.RemoveAll(p); err != nil && !strings.Contains(err.Error(), "no such file") {
			fmt.Fprintln(os.Stderr, "devbox: removing", p+":", err)
			rc = 125
		}
	}
	return rc
}
