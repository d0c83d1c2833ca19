package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/devbox-dev/devbox/image/limits"
	"github.com/devbox-dev/devbox/image/unpack"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
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
	// Limits bound the uncompressed sizes (zero fields: the defaults).
	Limits limits.Limits `json:"limits"`
	// Stream: the layer data stream (see StreamWriter) follows the request
	// on stdin; otherwise the layers are read from the store's blobs.
	Stream bool `json:"stream,omitempty"`
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
// hard links), reading their blobs from the store. It must run where Lchown
// to the image's ids works: inside the keep-id user namespace. Each layer is
// unpacked into tmp/ and renamed into layers/ under its lock; a layer already
// present is skipped.
func (s *Store) UnpackLayers(jobs []UnpackJob, opts unpack.Options, lim limits.Limits) (int, error) {
	n := 0
	var image int64
	for _, j := range jobs {
		did, err := s.unpackOne(j, opts, nil, lim, &image)
		if err != nil {
			return n, err
		}
		if did {
			n++
		}
	}
	return n, nil
}

// UnpackStream is UnpackLayers reading the layers' blobs from the layer data
// stream data (see StreamWriter) rather than from the store: each layer is
// unpacked while its blob downloads, and renamed into layers/ only after the
// stream certified the blob.
func (s *Store) UnpackStream(jobs []UnpackJob, data io.Reader, opts unpack.Options, lim limits.Limits) (int, error) {
	br := bufio.NewReaderSize(data, 1<<20)
	n := 0
	var image int64
	for _, j := range jobs {
		jr := &jobReader{r: br}
		did, err := s.unpackOne(j, opts, jr, lim, &image)
		if err == nil {
			err = jr.finish() // a layer present already: skip its data
		}
		if err != nil {
			return n, err
		}
		if did {
			n++
		}
	}
	return n, nil
}

// unpackOne unpacks job j from in, or from its blob in the store if in is
// nil, within the limits lim; image counts the logical bytes of the
// request's layers unpacked so far.
func (s *Store) unpackOne(j UnpackJob, opts unpack.Options, in *jobReader, lim limits.Limits, image *int64) (bool, error) {
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
	// Debris of an earlier, killed attempt at this layer (and at its
	// marker).
	old, _ := filepath.Glob(filepath.Join(s.TmpDir(), key+"-*"))
	oldMarkers, _ := filepath.Glob(filepath.Join(s.layerInfoDir(), "."+j.Chain.Hex+"-*"))
	for _, o := range append(old, oldMarkers...) {
		_ = os.RemoveAll(o)
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
	var src io.Reader = in
	if in == nil {
		f, err := s.OpenBlob(j.Blob)
		if err != nil {
			return false, fmt.Errorf("unpacking layer %s: %w", j.Blob, err)
		}
		defer f.Close()
		src = f
	}
	g := &sizeGuard{lim: lim.Resolve(), blob: j.Blob, prior: *image}
	defer func() { *image += g.logical() }()
	packed := &countReader{r: src, n: &g.packed}
	r, closeR, err := decompress(bufio.NewReaderSize(packed, 256<<10), func(r io.Reader) io.Reader { return &meterReader{r: r, g: g} })
	if err != nil {
		return false, fmt.Errorf("unpacking layer %s: %w", j.Blob, err)
	}
	defer closeR()
	o := opts
	o.CheckSize = func(expanded int64) error {
		g.sparse.Store(expanded)
		return g.check()
	}
	o.Lowers = nil
	for _, l := range j.Lowers {
		o.Lowers = append(o.Lowers, filepath.Join(s.LayersDir(), l))
	}
	h := sha256.New()
	stats, err := unpack.Apply(tmp, io.TeeReader(r, h), o)
	if err != nil {
		var le *limits.Error
		if errors.As(err, &le) {
			return false, le
		}
		var ie *unpack.IDRangeError
		if errors.As(err, &ie) {
			return false, fmt.Errorf("unpacking layer %s: %w", j.Blob, ie)
		}
		return false, fmt.Errorf("unpacking layer %s: %w", j.Blob, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != j.DiffID.Hex {
		return false, fmt.Errorf("unpacking layer %s: uncompressed digest sha256:%s does not match the image config's diff_id %s", j.Blob, got, j.DiffID)
	}
	if in != nil {
		// The blob must be stored and verified before the layer is.
		if err := in.finish(); err != nil {
			return false, fmt.Errorf("unpacking layer %s: %w", j.Blob, err)
		}
	}
	// The marker first: a layer in layers/ always has one; a marker left
	// without its layer (killed here) is garbage the next GC removes.
	mk := LayerMarker{Chain: j.Chain.Hex, DiffID: j.DiffID.String(), Blob: j.Blob.String(),
		Files: stats.Files + stats.Dirs + stats.Symlinks + stats.Hardlinks + stats.Whiteouts, Bytes: stats.Bytes}
	if err := s.writeMarker(mk); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, s.LayerDir(j.Chain)); err != nil {
		return false, storeErr("storing unpacked layer", err, s.Root)
	}
	ok = true
	return true, nil
}

// decompress sniffs gzip and zstd by their magic numbers (media types lie
// often enough) and returns a reader of the tar stream. Decompression runs in
// its own goroutine, up to aheadChunks*aheadChunk bytes ahead of the reader,
// so that it overlaps with writing files. close stops the goroutine and waits
// for it.
func decompress(br *bufio.Reader, meter func(io.Reader) io.Reader) (r io.Reader, close func(), err error) {
	magic, _ := br.Peek(4)
	var src io.Reader
	closeFn := func() {}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		src, closeFn = zr, func() { zr.Close() }
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		src, closeFn = zr, zr.Close
	default:
		src = br
	}
	if meter != nil {
		src = meter(src)
	}
	a := readAhead(src)
	return a, func() {
		a.close()
		closeFn()
	}, nil
}

const (
	aheadChunk  = 512 << 10
	aheadChunks = 8
)

// aheadReader reads its source in a goroutine of its own, some chunks ahead
// of its reader.
type aheadReader struct {
	full chan []byte // chunks read, closed after the last
	free chan []byte // chunks consumed
	stop chan struct{}
	done chan struct{}
	err  error // the source's error (io.EOF at its end), set before full is closed
	cur  []byte
	buf  []byte // the chunk cur is part of
}

func readAhead(src io.Reader) *aheadReader {
	a := &aheadReader{
		full: make(chan []byte, aheadChunks),
		free: make(chan []byte, aheadChunks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go a.fill(src)
	return a
}

func (a *aheadReader) fill(src io.Reader) {
	defer close(a.done)
	defer close(a.full)
	made := 0
	for {
		var buf []byte
		select {
		case buf = <-a.free:
		default:
			if made < aheadChunks {
				buf = make([]byte, aheadChunk)
				made++
			} else {
				select {
				case buf = <-a.free:
				case <-a.stop:
					a.err = errors.New("closed")
					return
				}
			}
		}
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = src.Read(buf[n:])
			n += m
		}
		if n > 0 {
			select {
			case a.full <- buf[:n]:
			case <-a.stop:
				a.err = errors.New("closed")
				return
			}
		}
		if err != nil {
			a.err = err
			return
		}
	}
}

func (a *aheadReader) Read(p []byte) (int, error) {
	if len(a.cur) == 0 {
		if a.buf != nil {
			a.free <- a.buf[:cap(a.buf)]
			a.buf = nil
		}
		b, ok := <-a.full
		if !ok {
			return 0, a.err
		}
		a.buf, a.cur = b, b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// close stops the goroutine and waits for it.
func (a *aheadReader) close() {
	close(a.stop)
	<-a.done
}

// UnpackMain is the body of the "unpack" stage: it reads an UnpackRequest on
// stdin, unpacks, and writes an UnpackResult to the file at fd 3.
func UnpackMain(result *os.File) int {
	var req UnpackRequest
	res := UnpackResult{}
	defer func() {
		_ = json.NewEncoder(result).Encode(res)
	}()
	dec := json.NewDecoder(os.Stdin)
	if err := dec.Decode(&req); err != nil {
		res.Error = "reading unpack request: " + err.Error()
		return 125
	}
	s := &Store{Root: req.Root}
	opts := unpack.Options{IgnoreChownErrors: req.IgnoreChownErrors}
	var n int
	var err error
	if req.Stream {
		n, err = s.UnpackStream(req.Jobs, io.MultiReader(dec.Buffered(), os.Stdin), opts, req.Limits)
	} else {
		n, err = s.UnpackLayers(req.Jobs, opts, req.Limits)
	}
	res.Unpacked = n
	if err != nil {
		res.Error = err.Error()
		if errors.Is(err, syscall.ENOSPC) && !strings.Contains(res.Error, "(hint:") {
			res.Error = storeErr("unpacking", err, req.Root).Error()
		}
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
// stdin and removes each path (Store.RemoveTrees: a store layer, temporary
// entry or box directory, relative to the store root opened once, no
// symbolic link followed).
func RemoveMain() int {
	var req RemoveRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "devbox: reading paths:", err)
		return 125
	}
	s := &Store{Root: req.Root}
	if err := s.RemoveTrees(req.Paths); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "devbox:", line)
		}
		return 125
	}
	return 0
}

// sizeGuard applies the limits on uncompressed sizes to one layer as it is
// decompressed (the meter, in the read-ahead goroutine) and as its sparse
// files expand (Apply): the layer's logical size is the decompressed stream
// plus the holes of sparse files.
type sizeGuard struct {
	lim    limits.Limits
	blob   v1.Hash
	prior  int64        // logical bytes of the earlier layers of the request
	stream atomic.Int64 // decompressed bytes
	packed atomic.Int64 // compressed bytes read
	sparse atomic.Int64 // expansion of sparse files
}

func (g *sizeGuard) logical() int64 { return g.stream.Load() + g.sparse.Load() }

func (g *sizeGuard) check() error {
	n := g.logical()
	switch {
	case n > g.lim.LayerSize:
		return g.lim.Over("layer "+g.blob.String(), "unpacks to more than", limits.KeyLayerSize)
	case g.prior+n > g.lim.ImageSize:
		return g.lim.Over("the image", "unpacks to more than", limits.KeyImageSize)
	case n > limits.RatioFloor && n/g.lim.CompressionRatio > max(g.packed.Load(), 1):
		return g.lim.Over(fmt.Sprintf("layer %s (%s compressed)", g.blob, limits.FormatSize(g.packed.Load())), "unpacks to more than", limits.KeyCompressionRatio)
	}
	return nil
}

// meterReader counts decompressed bytes into its guard.
type meterReader struct {
	r io.Reader
	g *sizeGuard
}

func (m *meterReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.g.stream.Add(int64(n))
	if err == nil || err == io.EOF {
		if lerr := m.g.check(); lerr != nil {
			return n, lerr
		}
	}
	return n, err
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
