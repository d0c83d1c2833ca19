package unpack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsafePath is returned (wrapped) for any entry that would touch
// something outside the destination directory: a name or hard link target
// that climbs above the root, or a path that goes through a symbolic link.
var ErrUnsafePath = errors.New("path escapes the layer root")

// Options tunes Apply.
type Options struct {
	// Lowers are already-extracted lower layer directories, top-most first. They are
	// only read, to resolve a hard link whose target is not in this layer (the file is
	// copied into this layer first, as overlayfs copy-up would), honouring whiteouts
	// and opaque dirs found in those lowers.
	Lowers []string
	// IgnoreChownErrors makes EPERM/EINVAL from lchown non-fatal (single-ID user
	// namespace mapping, or tests as a normal user): files keep the caller's owner.
	// It also makes EPERM from setting a kept extended attribute non-fatal.
	IgnoreChownErrors bool
	// Logf receives debug notes (skipped device node, dropped xattr). May be nil.
	Logf func(format string, args ...any)
	// CheckSize, if not nil, is called as sparse entries expand, with the
	// file bytes produced so far beyond the bytes of the stream (holes of
	// sparse files count at their logical size); its error stops Apply.
	// Without it the expansion is bounded by a fixed 64 GiB.
	CheckSize func(expanded int64) error
}

// Stats counts what Apply created. FIFOs count as Files. Skipped counts
// device nodes, aufs metadata and entries of unknown type. Bytes is the
// regular file content read from the tar.
type Stats struct {
	Files, Dirs, Symlinks, Hardlinks, Whiteouts, Opaques, Skipped int
	Bytes                                                         int64
}

const (
	copyBufSize   = 1 << 20
	maxNameLen    = 4096 // PATH_MAX: a longer name cannot be used in the container
	maxCachedDirs = 1024

	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
	opaqueXattr    = "user.overlay.opaque"
	paxXattrPrefix = "SCHILY.xattr."
)

// Apply extracts the tar stream r into dir, which must exist. It reads r to EOF
// (also after the tar end marker) so a caller hashing r sees every byte. On
// error, r is not drained and dir is left partly extracted.
func Apply(dir string, r io.Reader, opts Options) (Stats, error) {
	u, err := newUnpacker(dir, opts)
	if err != nil {
		return Stats{}, fmt.Errorf("unpacking layer: %w", err)
	}
	defer u.close()

	br := bufio.NewReaderSize(r, 64<<10)
	u.in = &countingReader{r: br}
	tr := tar.NewReader(u.in)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.stats, fmt.Errorf("unpacking layer: reading tar: %w", err)
		}
		if err := u.entry(tr, hdr); err != nil {
			return u.stats, fmt.Errorf("unpacking entry %q: %w", shorten(hdr.Name), err)
		}
	}
	if err := u.finishDirs(); err != nil {
		return u.stats, fmt.Errorf("unpacking layer: %w", err)
	}
	// Drain what follows the end marker (padding blocks) for hashing callers.
	for {
		_, err := br.Read(u.buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.stats, fmt.Errorf("unpacking layer: reading tar: %w", err)
		}
	}
	return u.stats, nil
}

// dirMeta is the deferred metadata of a directory entry.
type dirMeta struct {
	mode         uint32
	atime, mtime unix.Timespec
}

type unpacker struct {
	root int // O_PATH fd of the destination directory
	opts Options
	buf  []byte

	// cache maps a cleaned relative directory path to an O_PATH fd of that
	// directory, reached without following symlinks. Fds dropped from the
	// cache are retired and closed at the start of the next entry, so that
	// an fd obtained during an entry stays valid until the entry is done.
	cache   map[string]int
	retired []int

	dirs   map[string]dirMeta // deferred directory metadata
	lowers []int              // lazily opened O_PATH fds of opts.Lowers, -1 if not yet

	stats      Stats
	chownNoted bool

	in       *countingReader // the tar stream, to tell sparse expansion
	expanded int64           // file bytes produced beyond the stream bytes read
}

// maxSparseExpansion bounds the zero bytes that sparse tar entries may expand
// to in one layer beyond the bytes of the stream, so that a tiny hostile tar
// cannot keep Apply busy for hours. A variable for tests.
var maxSparseExpansion int64 = 64 << 30

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func newUnpacker(dir string, opts Options) (*unpacker, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	u := &unpacker{
		root:   fd,
		opts:   opts,
		buf:    make([]byte, copyBufSize),
		cache:  make(map[string]int),
		dirs:   make(map[string]dirMeta),
		lowers: make([]int, len(opts.Lowers)),
	}
	for i := range u.lowers {
		u.lowers[i] = -1
	}
	return u, nil
}

func (u *unpacker) close() {
	u.flushCache()
	u.closeRetired()
	for _, fd := range u.lowers {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	unix.Close(u.root)
}

func (u *unpacker) logf(format string, args ...any) {
	if u.opts.Logf != nil {
		u.opts.Logf(format, args...)
	}
}

func (u *unpacker) entry(tr *tar.Reader, hdr *tar.Header) error {
	u.closeRetired()
	if len(u.cache) > maxCachedDirs {
		u.flushCache()
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	parent, base := splitPath(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(parent, base)
	}
	if rel == "" && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("%w: a non-directory entry names the root", ErrUnsafePath)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.dir(rel, hdr)
	case tar.TypeReg, tar.TypeCont:
		return u.file(rel, hdr, tr)
	case tar.TypeSymlink:
		return u.symlink(rel, hdr)
	case tar.TypeLink:
		return u.hardlink(rel, hdr)
	case tar.TypeFifo:
		return u.fifo(rel, hdr)
	case tar.TypeChar, tar.TypeBlock:
		u.stats.Skipped++
		u.logf("unpack: skipping device node %q (%d:%d)", hdr.Name, hdr.Devmajor, hdr.Devminor)
		return nil
	default:
		u.stats.Skipped++
		u.logf("unpack: skipping entry %q of unknown type %q", hdr.Name, hdr.Typeflag)
		return nil
	}
}

// shorten cuts an absurdly long name for an error message.
func shorten(name string) string {
	const max = 256
	if len(name) <= max {
		return name
	}
	return name[:max] + "..."
}

// cleanName cleans a tar name lexically into a relative slash-separated path
// without empty, "." or ".." components; "" is the root. A name that climbs
// above the root fails with ErrUnsafePath.
func cleanName(name string) (string, error) {
	if len(name) > maxNameLen {
		return "", fmt.Errorf("name of %d bytes: %w", len(name), unix.ENAMETOOLONG)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: name contains NUL", ErrUnsafePath)
	}
	if isClean(name) {
		return name, nil
	}
	parts := make([]string, 0, strings.Count(name, "/")+1)
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", ErrUnsafePath
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "/"), nil
}

// isClean reports whether name is already a clean relative path (the common
// case, tested without allocating).
func isClean(name string) bool {
	if name == "" {
		return false
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '/' {
			c := name[start:i]
			if c == "" || c == "." || c == ".." {
				return false
			}
			start = i + 1
		}
	}
	return true
}

func splitPath(rel string) (parent, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

func joinPath(parent, base string) string {
	if parent == "" {
		return base
	}
	return parent + "/" + base
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func headerTimes(hdr *tar.Header) [2]unix.Timespec {
	m := timespec(hdr.ModTime)
	a := m
	if !hdr.AccessTime.IsZero() {
		a = timespec(hdr.AccessTime)
	}
	return [2]unix.Timespec{a, m}
}

func checkIDs(uid, gid int) error {
	if uid < 0 || uid >= math.MaxUint32 || gid < 0 || gid >= math.MaxUint32 {
		return fmt.Errorf("invalid owner %d:%d", uid, gid)
	}
	return nil
}

// parentFD returns the fd of rel's parent directory (created if missing)
// and rel's last component.
func (u *unpacker) parentFD(rel string) (int, string, error) {
	parent, base := splitPath(rel)
	pfd, err := u.dirFD(parent, u.mkImplicit)
	return pfd, base, err
}

func (u *unpacker) file(rel string, hdr *tar.Header, r io.Reader) error {
	if err := checkIDs(hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	pfd, base, err := u.parentFD(rel)
	if err != nil {
		return err
	}
	fd, err := u.create(pfd, rel, base, func() (int, error) {
		return unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	start := u.in.n
	n, err := u.copyData(fd, r, func(n int64) error {
		d := n - (u.in.n - start)
		if d <= 0 {
			return nil
		}
		if u.opts.CheckSize != nil {
			return u.opts.CheckSize(u.expanded + d)
		}
		if d+u.expanded > maxSparseExpansion {
			return errors.New("sparse file expands beyond the limit")
		}
		return nil
	})
	u.stats.Bytes += n
	if d := n - (u.in.n - start); d > 0 {
		u.expanded += d
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	if err := u.chownErr(unix.Fchown(fd, hdr.Uid, hdr.Gid), rel, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return &os.PathError{Op: "fchmod", Path: rel, Err: err}
	}
	if err := u.setXattrs(fd, rel, hdr); err != nil {
		return err
	}
	ts := headerTimes(hdr)
	if err := futimens(fd, &ts); err != nil {
		return &os.PathError{Op: "futimens", Path: rel, Err: err}
	}
	u.stats.Files++
	return nil
}

// copyData copies r to the new file fd through the shared buffer, leaving
// holes for blocks of zeros. check, if not nil, is called with the byte count
// after each read.
func (u *unpacker) copyData(fd int, r io.Reader, check func(int64) error) (int64, error) {
	var n int64
	hole := false // the file ends with a hole not yet sized by ftruncate
	for {
		nr, rerr := r.Read(u.buf)
		if nr > 0 {
			chunk := u.buf[:nr]
			if nr >= holeMin && isZero(chunk) {
				if _, err := unix.Seek(fd, int64(nr), io.SeekCurrent); err != nil {
					return n, err
				}
				hole = true
			} else {
				if err := writeAll(fd, chunk); err != nil {
					return n, err
				}
				hole = false
			}
			n += int64(nr)
			if check != nil {
				if err := check(n); err != nil {
					return n, err
				}
			}
		}
		if rerr == io.EOF {
			if hole {
				if err := unix.Ftruncate(fd, n); err != nil {
					return n, err
				}
			}
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// holeMin is the smallest run of zeros that copyData skips.
const holeMin = 64 << 10

var zeros = make([]byte, copyBufSize)

func isZero(b []byte) bool {
	return b[0] == 0 && bytes.Equal(b, zeros[:len(b)])
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

func (u *unpacker) dir(rel string, hdr *tar.Header) error {
	if err := checkIDs(hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	ts := headerTimes(hdr)
	meta := dirMeta{mode: uint32(hdr.Mode) & 0o7777, atime: ts[0], mtime: ts[1]}
	if rel == "" {
		if err := u.chownErr(unix.Fchownat(u.root, ".", hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW), ".", hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if err := u.dirXattrs(u.root, ".", ".", hdr, false); err != nil {
			return err
		}
		u.dirs[""] = meta
		u.stats.Dirs++
		return nil
	}
	pfd, base, err := u.parentFD(rel)
	if err != nil {
		return err
	}
	opaque := false
	err = unix.Mkdirat(pfd, base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "fstatat", Path: rel, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = nil // merge into the existing directory
		} else {
			opaque = isWhiteout(&st)
			if err := u.clear(pfd, rel, base); err != nil {
				return err
			}
			err = unix.Mkdirat(pfd, base, 0o700)
		}
	}
	if err != nil {
		return &os.PathError{Op: "mkdirat", Path: rel, Err: err}
	}
	if err := u.chownErr(unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW), rel, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := u.dirXattrs(pfd, base, rel, hdr, opaque); err != nil {
		return err
	}
	u.dirs[rel] = meta
	u.stats.Dirs++
	return nil
}

// dirXattrs sets the kept xattrs of hdr, and the opaque marker if asked, on
// directory base in pfd.
func (u *unpacker) dirXattrs(pfd int, base, rel string, hdr *tar.Header, opaque bool) error {
	if !opaque && !hasXattrs(hdr) {
		return nil
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "openat", Path: rel, Err: err}
	}
	defer unix.Close(fd)
	if opaque {
		if err := setOpaque(fd, rel); err != nil {
			return err
		}
	}
	return u.setXattrs(fd, rel, hdr)
}

func (u *unpacker) symlink(rel string, hdr *tar.Header) error {
	if err := checkIDs(hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	pfd, base, err := u.parentFD(rel)
	if err != nil {
		return err
	}
	if _, err := u.create(pfd, rel, base, func() (int, error) {
		return -1, unix.Symlinkat(hdr.Linkname, pfd, base)
	}); err != nil {
		return err
	}
	u.forget(rel)
	if err := u.chownErr(unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW), rel, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	u.dropXattrs(rel, hdr)
	ts := headerTimes(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: rel, Err: err}
	}
	u.stats.Symlinks++
	return nil
}

func (u *unpacker) fifo(rel string, hdr *tar.Header) error {
	if err := checkIDs(hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	pfd, base, err := u.parentFD(rel)
	if err != nil {
		return err
	}
	if _, err := u.create(pfd, rel, base, func() (int, error) {
		return -1, unix.Mkfifoat(pfd, base, 0o600)
	}); err != nil {
		return err
	}
	ts := headerTimes(hdr)
	if err := u.nodeMeta(pfd, base, rel, hdr.Uid, hdr.Gid, uint32(hdr.Mode)&0o7777, &ts); err != nil {
		return err
	}
	u.dropXattrs(rel, hdr)
	u.stats.Files++
	return nil
}

// nodeMeta sets owner, mode and times of a FIFO just created at pfd/base.
func (u *unpacker) nodeMeta(pfd int, base, rel string, uid, gid int, mode uint32, ts *[2]unix.Timespec) error {
	if err := u.chownErr(unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW), rel, uid, gid); err != nil {
		return err
	}
	// fchmodat follows a final symlink, but base is the FIFO this entry just
	// created and nothing else writes into the layer directory.
	if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
		return &os.PathError{Op: "fchmodat", Path: rel, Err: err}
	}
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: rel, Err: err}
	}
	return nil
}

func (u *unpacker) hardlink(rel string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err == nil && target == "" {
		err = fmt.Errorf("%w: hard link to the root", ErrUnsafePath)
	}
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if target == rel {
		u.logf("unpack: ignoring hard link %q to itself", hdr.Name)
		return nil
	}
	if err := u.linkTarget(target); err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	npfd, nbase, err := u.parentFD(rel)
	if err != nil {
		return err
	}
	tparent, tbase := splitPath(target)
	tpfd, err := u.dirFD(tparent, nil)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	_, err = u.create(npfd, rel, nbase, func() (int, error) {
		return -1, unix.Linkat(tpfd, tbase, npfd, nbase, 0)
	})
	if err != nil {
		return err
	}
	u.stats.Hardlinks++
	return nil
}

// linkTarget makes sure the hard link target (a cleaned path) exists in this
// layer as a non-directory, copying it up from the lowers if needed.
func (u *unpacker) linkTarget(target string) error {
	parent, base := splitPath(target)
	pfd, err := u.dirFD(parent, nil)
	if err == nil {
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil {
			switch {
			case isWhiteout(&st):
				return errors.New("target is deleted by a whiteout of this layer")
			case st.Mode&unix.S_IFMT == unix.S_IFDIR:
				return errors.New("target is a directory")
			}
			return nil
		}
		err = &os.PathError{Op: "fstatat", Path: target, Err: err}
	}
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	return u.copyUp(target)
}

// create runs mk, which creates the node base in pfd and fails with EEXIST
// if something is there; in that case the existing node is removed and mk
// runs once more.
func (u *unpacker) create(pfd int, rel, base string, mk func() (int, error)) (int, error) {
	fd, err := mk()
	if err == unix.EEXIST {
		if err := u.clear(pfd, rel, base); err != nil {
			return -1, err
		}
		fd, err = mk()
	}
	if err != nil {
		return -1, &os.PathError{Op: "create", Path: rel, Err: err}
	}
	return fd, nil
}

// clear removes whatever is at pfd/base (rel), recursively for a directory.
func (u *unpacker) clear(pfd int, rel, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR {
		u.invalidate(rel)
		err = removeAllAt(pfd, base)
	}
	if err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "remove", Path: rel, Err: err}
	}
	return nil
}

// removeAllAt removes name in dirfd and everything below it, without
// following symlinks.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	buf := make([]byte, 8192)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			unix.Close(fd)
			return err
		}
	}
	unix.Close(fd)
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// invalidate forgets cached fds and deferred metadata of the directory rel
// and everything below it, before it is removed.
func (u *unpacker) invalidate(rel string) {
	u.flushCache()
	prefix := rel + "/"
	for k := range u.dirs {
		if k == rel || strings.HasPrefix(k, prefix) {
			delete(u.dirs, k)
		}
	}
}

func (u *unpacker) forget(rel string) {
	if fd, ok := u.cache[rel]; ok {
		delete(u.cache, rel)
		u.retired = append(u.retired, fd)
	}
}

func (u *unpacker) flushCache() {
	for k, fd := range u.cache {
		u.retired = append(u.retired, fd)
		delete(u.cache, k)
	}
}

func (u *unpacker) closeRetired() {
	for _, fd := range u.retired {
		unix.Close(fd)
	}
	u.retired = u.retired[:0]
}

// mkdirFunc creates the missing directory base (path rel) in pfd.
type mkdirFunc func(pfd int, rel, base string) error

// mkImplicit creates a directory that the tar did not list.
func (u *unpacker) mkImplicit(pfd int, rel, base string) error {
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
		return &os.PathError{Op: "mkdirat", Path: rel, Err: err}
	}
	if err := unix.Fchmodat(pfd, base, 0o755, 0); err != nil {
		return &os.PathError{Op: "fchmodat", Path: rel, Err: err}
	}
	return nil
}

// dirFD returns an O_PATH fd of the directory rel ("" is the root), reached
// from the root one component at a time without following symlinks. Missing
// directories are created with mk, or fail with ENOENT if mk is nil. The fd
// belongs to the cache and stays open until the next entry.
func (u *unpacker) dirFD(rel string, mk mkdirFunc) (int, error) {
	if rel == "" {
		return u.root, nil
	}
	if fd, ok := u.cache[rel]; ok {
		return fd, nil
	}
	// Start from the deepest cached ancestor.
	pfd, start := u.root, 0
	for i := len(rel); ; {
		j := strings.LastIndexByte(rel[:i], '/')
		if j < 0 {
			break
		}
		if fd, ok := u.cache[rel[:j]]; ok {
			pfd, start = fd, j+1
			break
		}
		i = j
	}
	for {
		end := strings.IndexByte(rel[start:], '/')
		if end < 0 {
			end = len(rel)
		} else {
			end += start
		}
		cur, base := rel[:end], rel[start:end]
		fd, err := u.openDir(pfd, cur, base, mk)
		if err != nil {
			return -1, err
		}
		u.cache[cur] = fd
		if end == len(rel) {
			return fd, nil
		}
		pfd, start = fd, end+1
	}
}

func openPath(pfd int, base string) (int, error) {
	for {
		fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openDir opens directory base (path cur) in pfd, see dirFD.
func (u *unpacker) openDir(pfd int, cur, base string, mk mkdirFunc) (int, error) {
	fd, err := openPath(pfd, base)
	if err == nil {
		return fd, nil
	}
	opaque := false
	switch err {
	case unix.ENOENT:
		if mk == nil {
			return -1, &os.PathError{Op: "openat", Path: cur, Err: err}
		}
	case unix.ENOTDIR, unix.ELOOP:
		var st unix.Stat_t
		if serr := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
			return -1, &os.PathError{Op: "fstatat", Path: cur, Err: serr}
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			return -1, fmt.Errorf("%w: %q is a symbolic link", ErrUnsafePath, cur)
		case isWhiteout(&st) && mk == nil:
			return -1, &os.PathError{Op: "openat", Path: cur, Err: unix.ENOENT}
		case isWhiteout(&st):
			// A directory recreated under a whiteout of this layer hides
			// the lower layers: make it opaque.
			if err := u.clear(pfd, cur, base); err != nil {
				return -1, err
			}
			opaque = true
		default:
			return -1, &os.PathError{Op: "openat", Path: cur, Err: unix.ENOTDIR}
		}
	default:
		return -1, &os.PathError{Op: "openat", Path: cur, Err: err}
	}
	if err := mk(pfd, cur, base); err != nil {
		return -1, err
	}
	if opaque {
		dfd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, &os.PathError{Op: "openat", Path: cur, Err: err}
		}
		err = setOpaque(dfd, cur)
		unix.Close(dfd)
		if err != nil {
			return -1, err
		}
	}
	fd, err = openPath(pfd, base)
	if err != nil {
		return -1, &os.PathError{Op: "openat", Path: cur, Err: err}
	}
	return fd, nil
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func setOpaque(fd int, rel string) error {
	if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
		return &os.PathError{Op: "setxattr " + opaqueXattr, Path: rel, Err: err}
	}
	return nil
}

// whiteout handles a .wh.* entry named base in directory parent.
func (u *unpacker) whiteout(parent, base string) error {
	if base == opaqueMarker {
		dfd, err := u.dirFD(parent, u.mkImplicit)
		if err != nil {
			return err
		}
		fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "openat", Path: parent, Err: err}
		}
		err = setOpaque(fd, parent)
		unix.Close(fd)
		if err != nil {
			return err
		}
		u.stats.Opaques++
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		u.stats.Skipped++
		u.logf("unpack: skipping aufs metadata %q", joinPath(parent, base))
		return nil
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafePath, name)
	}
	pfd, err := u.dirFD(parent, u.mkImplicit)
	if err != nil {
		return err
	}
	rel := joinPath(parent, name)
	if _, err := u.create(pfd, rel, name, func() (int, error) {
		return -1, unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	}); err != nil {
		return err
	}
	u.stats.Whiteouts++
	return nil
}

// chownErr filters a chown error according to IgnoreChownErrors. EINVAL
// means that uid or gid has no mapping in this user namespace: without
// IgnoreChownErrors that is an IDRangeError.
func (u *unpacker) chownErr(err error, rel string, uid, gid int) error {
	if err == nil {
		return nil
	}
	if u.opts.IgnoreChownErrors && (err == unix.EPERM || err == unix.EINVAL) {
		if !u.chownNoted {
			u.chownNoted = true
			u.logf("unpack: cannot change owners (%v), files keep the caller's owner", err)
		}
		return nil
	}
	if err == unix.EINVAL {
		return newIDRangeError(uid, gid)
	}
	return &os.PathError{Op: "lchown", Path: rel, Err: err}
}

// finishDirs applies the deferred directory modes and times, deepest first.
func (u *unpacker) finishDirs() error {
	u.closeRetired()
	rels := make([]string, 0, len(u.dirs))
	for rel := range u.dirs {
		rels = append(rels, rel)
	}
	depth := func(s string) int {
		if s == "" {
			return -1
		}
		return strings.Count(s, "/")
	}
	sort.Slice(rels, func(i, j int) bool {
		di, dj := depth(rels[i]), depth(rels[j])
		if di != dj {
			return di > dj
		}
		return rels[i] < rels[j]
	})
	for _, rel := range rels {
		m := u.dirs[rel]
		pfd, base := u.root, "."
		if rel != "" {
			var parent string
			parent, base = splitPath(rel)
			var err error
			if pfd, err = u.dirFD(parent, nil); err != nil {
				return err
			}
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &os.PathError{Op: "fstatat", Path: rel, Err: err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
		}
		// Times first: once the mode is set, the root may no longer be
		// searchable for the "." that names it (mode 0000), and chmod
		// leaves the times alone.
		ts := [2]unix.Timespec{m.atime, m.mtime}
		if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "utimensat", Path: rel, Err: err}
		}
		if err := unix.Fchmodat(pfd, base, m.mode, 0); err != nil {
			return &os.PathError{Op: "fchmodat", Path: rel, Err: err}
		}
	}
	return nil
}
