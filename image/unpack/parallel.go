package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Parallel extraction
//
// One goroutine, the reader, reads the tar stream and handles every entry in
// order, except that it hands regular files of at most maxJobSize bytes (read
// into memory first) and symbolic links to a few workers, which create them
// concurrently: most of the time of an extraction goes to creating inodes in
// the kernel, and creations overlap well. Order is kept wherever it matters:
//
//   - a job is dispatched only when nothing exists at its path (the reader
//     checks with fstatat), so a worker never removes or replaces anything, and
//     its O_EXCL create failing is an error;
//   - the paths of the jobs in flight are recorded, and before the reader
//     touches a path (an entry's own path, a hard link target, a whiteout's
//     victim, a directory it opens or creates on the way to an entry) it waits
//     for the job on that path, so the entry sees what the sequential order
//     would have left there;
//   - before removing anything, before closing a directory fd that jobs may
//     still use, and before applying the deferred directory metadata, the
//     reader waits for every job (a barrier).
//
// Workers resolve no path: they operate on one final component in the parent
// directory fd that the reader resolved, with the system calls of the
// sequential code (O_CREAT|O_EXCL|O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, fd-based
// metadata).

const (
	// DefaultWorkers is the number of workers when Options.Workers is 0.
	DefaultWorkers = 3
	// maxJobSize is the largest regular file handed to a worker; larger
	// files are written by the reader itself.
	maxJobSize = 1 << 20
	// maxBuffered bounds the file content held in memory for jobs in flight.
	maxBuffered = 16 << 20
	// maxActive bounds the jobs in flight.
	maxActive = 512
	// minClass is the smallest buffer size class.
	minClassShift = 12
	nClasses      = 20 - minClassShift + 1 // 4 KiB .. 1 MiB
)

// job is a regular file or symbolic link created by a worker.
type job struct {
	pfd  int // parent directory, a cached fd kept open until the job is done
	base string
	rel  string
	hdr  *tar.Header
	data []byte // file content, a pooled buffer; nil for a symbolic link or an empty file
}

// pool is the worker side of an unpacker.
type pool struct {
	jobs chan *job
	wg   sync.WaitGroup

	mu       sync.Mutex
	cond     sync.Cond
	inflight map[string]struct{} // paths of the jobs not done
	active   int                 // jobs dispatched and not done
	buffered int                 // bytes of buffers held by jobs in flight
	err      error               // first worker error, wrapped with its entry
	failed   atomic.Bool
	stats    Stats // counted by the workers
	free     [nClasses][][]byte
	freeSize int
}

func (u *unpacker) startWorkers(n int) {
	p := &pool{jobs: make(chan *job, maxActive), inflight: make(map[string]struct{})}
	p.cond.L = &p.mu
	u.pool = p
	for range n {
		p.wg.Add(1)
		go u.worker()
	}
}

// stopWorkers waits for the jobs in flight and ends the workers.
func (u *unpacker) stopWorkers() {
	if u.pool == nil {
		return
	}
	close(u.pool.jobs)
	u.pool.wg.Wait()
}

func (u *unpacker) worker() {
	p := u.pool
	defer p.wg.Done()
	for j := range p.jobs {
		var err error
		if !p.failed.Load() {
			err = u.runJob(j)
		}
		p.mu.Lock()
		delete(p.inflight, j.rel)
		p.active--
		if j.data != nil {
			p.buffered -= cap(j.data)
			p.putBuf(j.data)
		}
		switch {
		case err != nil:
			if p.err == nil {
				p.err = err
				p.failed.Store(true)
			}
		case j.hdr.Typeflag == tar.TypeSymlink:
			p.stats.Symlinks++
		default:
			p.stats.Files++
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

func (u *unpacker) runJob(j *job) error {
	var err error
	if j.hdr.Typeflag == tar.TypeSymlink {
		err = u.makeSymlink(j.pfd, j.rel, j.base, j.hdr)
	} else {
		err = u.writeFile(j)
	}
	if err != nil {
		return fmt.Errorf("unpacking entry %q: %w", shorten(j.hdr.Name), err)
	}
	return nil
}

// writeFile creates the regular file of j, which must not exist.
func (u *unpacker) writeFile(j *job) error {
	fd, err := unix.Openat(j.pfd, j.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: j.rel, Err: err}
	}
	defer unix.Close(fd)
	if err := writeSparse(fd, j.data); err != nil {
		return fmt.Errorf("writing %s: %w", j.rel, err)
	}
	return u.fileMeta(fd, j.rel, j.hdr)
}

// writeSparse writes b to the new file fd, leaving holes for aligned blocks
// of holeMin zero bytes.
func writeSparse(fd int, b []byte) error {
	if len(b) < holeMin {
		return writeAll(fd, b)
	}
	zeroAt := func(off int) bool { return len(b)-off >= holeMin && isZero(b[off:off+holeMin]) }
	hole := false
	for off := 0; off < len(b); {
		zero := zeroAt(off)
		end := off
		for end < len(b) && zeroAt(end) == zero {
			end = min(end+holeMin, len(b))
		}
		if zero {
			if _, err := unix.Seek(fd, int64(end-off), io.SeekCurrent); err != nil {
				return err
			}
		} else if err := writeAll(fd, b[off:end]); err != nil {
			return err
		}
		hole = zero
		off = end
	}
	if hole {
		return unix.Ftruncate(fd, int64(len(b)))
	}
	return nil
}

// waitPath waits until no job is in flight on rel.
func (u *unpacker) waitPath(rel string) {
	p := u.pool
	if p == nil {
		return
	}
	p.mu.Lock()
	for {
		if _, ok := p.inflight[rel]; !ok {
			break
		}
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// waitIdle waits until no job is in flight.
func (u *unpacker) waitIdle() {
	p := u.pool
	if p == nil {
		return
	}
	p.mu.Lock()
	for p.active > 0 {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// workerErr returns the first error of a worker.
func (u *unpacker) workerErr() error {
	p := u.pool
	if p == nil || !p.failed.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func sizeClass(n int) int {
	c := 0
	for (1 << (c + minClassShift)) < n {
		c++
	}
	return c
}

// getBuf returns a buffer of n bytes (0 < n <= maxJobSize), waiting while the
// jobs in flight hold too much memory. It returns nil if a worker failed.
func (p *pool) getBuf(n int) []byte {
	c := sizeClass(n)
	size := 1 << (c + minClassShift)
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.active > 0 && (p.buffered+size > maxBuffered || p.active >= maxActive) && p.err == nil {
		p.cond.Wait()
	}
	if p.err != nil {
		return nil
	}
	p.buffered += size
	if l := len(p.free[c]); l > 0 {
		b := p.free[c][l-1]
		p.free[c] = p.free[c][:l-1]
		p.freeSize -= size
		return b[:n]
	}
	return make([]byte, n, size)
}

// putBuf keeps b for reuse, up to maxBuffered bytes in all. p.mu is held.
func (p *pool) putBuf(b []byte) {
	size := cap(b)
	if p.freeSize+size > maxBuffered {
		return
	}
	c := sizeClass(size)
	p.free[c] = append(p.free[c], b[:0])
	p.freeSize += size
}

// waitSlot waits until a job without buffer may be dispatched. It returns
// false if a worker failed.
func (p *pool) waitSlot() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.active >= maxActive && p.err == nil {
		p.cond.Wait()
	}
	return p.err == nil
}

// dispatch hands j to a worker. A slot (and j.data's memory) is reserved.
func (p *pool) dispatch(j *job) {
	p.mu.Lock()
	p.inflight[j.rel] = struct{}{}
	p.active++
	p.mu.Unlock()
	p.jobs <- j
}

// errWorkerFailed stops the reader after a worker failed; Apply reports the
// worker's error instead.
var errWorkerFailed = errors.New("a worker failed")

// absent reports whether nothing exists at base in pfd, so that a job may
// create it without replacing anything.
func absent(pfd int, base string) bool {
	var st unix.Stat_t
	return unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == unix.ENOENT
}

// fileJob hands the regular file rel to a worker if it can: it returns
// false, having read nothing, when the file must be written by the reader.
func (u *unpacker) fileJob(rel string, hdr *tar.Header, r io.Reader) (bool, error) {
	p := u.pool
	if p == nil || hdr.Size > maxJobSize || hdr.Size < 0 {
		return false, nil
	}
	if err := checkIDs(hdr.Uid, hdr.Gid); err != nil {
		return true, err
	}
	pfd, base, err := u.parentFD(rel)
	if err != nil {
		return true, err
	}
	if !absent(pfd, base) {
		return false, nil
	}
	j := &job{pfd: pfd, base: base, rel: rel, hdr: hdr}
	if hdr.Size > 0 {
		if j.data = p.getBuf(int(hdr.Size)); j.data == nil {
			return true, errWorkerFailed
		}
		start := u.in.n
		n, err := io.ReadFull(r, j.data)
		u.stats.Bytes += int64(n)
		if d := int64(n) - (u.in.n - start); d > 0 {
			u.expanded += d
		}
		if err == nil && u.expanded > maxSparseExpansion {
			err = errors.New("sparse file expands beyond the limit")
		}
		if err != nil {
			p.mu.Lock()
			p.buffered -= cap(j.data)
			p.mu.Unlock()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return true, fmt.Errorf("writing %s: %w", rel, err)
		}
	} else if !p.waitSlot() {
		return true, errWorkerFailed
	}
	p.dispatch(j)
	return true, nil
}

// symlinkJob hands the symbolic link rel to a worker if it can.
func (u *unpacker) symlinkJob(rel string, hdr *tar.Header) (bool, error) {
	p := u.pool
	if p == nil {
		return false, nil
	}
	if err := checkIDs(hdr.Uid, hdr.Gid); err != nil {
		return true, err
	}
	pfd, base, err := u.parentFD(rel)
	if err != nil {
		return true, err
	}
	if !absent(pfd, base) {
		return false, nil
	}
	if !p.waitSlot() {
		return true, errWorkerFailed
	}
	u.dropXattrs(rel, hdr)
	p.dispatch(&job{pfd: pfd, base: base, rel: rel, hdr: hdr})
	return true, nil
}
