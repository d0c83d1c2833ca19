package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layer data stream
//
// A pull unpacks while it downloads: the compressed data of the layers
// reaches the unpack stage on one pipe, job after job in the order of the
// request, as frames: a 4-byte big-endian length n followed by n bytes of the
// job's blob. A frame of length 0 ends the job's data and certifies that the
// whole blob is stored, its size and digest verified. When a download fails,
// the pulling process closes the pipe without that end frame: the unpack
// stage meets the end of the stream inside a job, fails, and keeps nothing of
// the layer. A layer is renamed into layers/ only after its end frame.

// maxFrame is the largest data frame.
const maxFrame = 1 << 20

// errStreamEnded is the unpack stage's error when the data of a job ends
// without its end frame.
var errStreamEnded = errors.New("layer data ended early (the download failed or was interrupted)")

// StreamWriter writes the layer data stream.
type StreamWriter struct {
	W io.Writer
}

// Write writes p as data of the current job.
func (w *StreamWriter) Write(p []byte) (int, error) {
	done := 0
	var hdr [4]byte
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		binary.BigEndian.PutUint32(hdr[:], uint32(n))
		if _, err := w.W.Write(hdr[:]); err != nil {
			return done, err
		}
		m, err := w.W.Write(p[:n])
		done += m
		if err != nil {
			return done, err
		}
		p = p[n:]
	}
	return done, nil
}

// EndJob ends the current job's data: its blob is stored and verified.
func (w *StreamWriter) EndJob() error {
	_, err := w.W.Write([]byte{0, 0, 0, 0})
	return err
}

// jobReader reads one job's data from the stream.
type jobReader struct {
	r    io.Reader
	left int  // data bytes left in the current frame
	done bool // the end frame was read
}

func (j *jobReader) Read(p []byte) (int, error) {
	for j.left == 0 {
		if j.done {
			return 0, io.EOF
		}
		var hdr [4]byte
		if _, err := io.ReadFull(j.r, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = errStreamEnded
			}
			return 0, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxFrame {
			return 0, fmt.Errorf("layer data stream: frame of %d bytes", n)
		}
		if n == 0 {
			j.done = true
			return 0, io.EOF
		}
		j.left = int(n)
	}
	if len(p) > j.left {
		p = p[:j.left]
	}
	n, err := j.r.Read(p)
	j.left -= n
	if err == io.EOF {
		if j.left > 0 {
			err = errStreamEnded
		} else {
			err = nil
		}
	}
	return n, err
}

// finish reads the rest of the job's data up to its end frame.
func (j *jobReader) finish() error {
	if j.done {
		return nil
	}
	_, err := io.Copy(io.Discard, j)
	return err
}

// BlobFeed follows one blob while it is downloaded, for readers that want
// its bytes before it is complete: Store.WriteBlobFeed reports to it, and
// each Reader returns the bytes written so far, waits for more, and ends
// (io.EOF) once the blob is stored with its digest verified.
type BlobFeed struct {
	mu    sync.Mutex
	cond  sync.Cond
	f     *os.File // readable at [0, n)
	n     int64
	final bool  // no more bytes will come
	err   error // why the blob is not stored, when final
}

// NewBlobFeed returns a feed waiting for its writer.
func NewBlobFeed() *BlobFeed {
	b := &BlobFeed{}
	b.cond.L = &b.mu
	return b
}

// start gives the feed the file being written.
func (b *BlobFeed) start(f *os.File) {
	b.mu.Lock()
	if b.final {
		f.Close()
	} else {
		b.f = f
	}
	b.mu.Unlock()
}

// advance records that n bytes are written.
func (b *BlobFeed) advance(n int64) {
	b.mu.Lock()
	b.n = n
	b.cond.Broadcast()
	b.mu.Unlock()
}

// stored ends the feed: the blob is in the store, verified, and its content
// is f (which the feed now owns) up to size.
func (b *BlobFeed) stored(f *os.File, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.final {
		f.Close()
		return
	}
	if b.f != nil && b.f != f {
		b.f.Close()
	}
	b.f, b.n, b.final = f, size, true
	b.cond.Broadcast()
}

// Fail ends the feed with err if it has not ended yet.
func (b *BlobFeed) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.final {
		return
	}
	b.final, b.err = true, err
	b.cond.Broadcast()
}

// Close releases the feed's file; readers fail from then on.
func (b *BlobFeed) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.final {
		b.final, b.err = true, errors.New("blob feed closed")
	}
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
	b.cond.Broadcast()
}

// Reader returns a new reader of the blob from its first byte.
func (b *BlobFeed) Reader() io.Reader { return &feedReader{b: b} }

type feedReader struct {
	b   *BlobFeed
	off int64
}

func (r *feedReader) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	for r.off >= b.n && !b.final {
		b.cond.Wait()
	}
	f, n, final, err := b.f, b.n, b.final, b.err
	b.mu.Unlock()
	if final && err != nil {
		return 0, err
	}
	if r.off >= n {
		return 0, io.EOF
	}
	if f == nil {
		return 0, errors.New("blob feed closed")
	}
	if int64(len(p)) > n-r.off {
		p = p[:n-r.off]
	}
	m, err := f.ReadAt(p, r.off)
	r.off += int64(m)
	if err == io.EOF && m > 0 {
		err = nil
	}
	return m, err
}

// FeedStored ends feed with blob h already in the store.
func (s *Store) FeedStored(feed *BlobFeed, h v1.Hash, size int64) error {
	f, err := s.OpenBlob(h)
	if err != nil {
		feed.Fail(err)
		return err
	}
	if size < 0 {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			feed.Fail(err)
			return err
		}
		size = fi.Size()
	}
	feed.stored(f, size)
	return nil
}
