package commit

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// StageRead is the stage that writes a box's layer tar (ReadMain).
const StageRead = "commit-read"

// ReadRequest is what the commit-read stage reads on stdin.
type ReadRequest struct {
	Upper  string   `json:"upper"`  // the box's upper directory
	Lowers []string `json:"lowers"` // its image's layer directories, top-most first
	// Frozen are the box's own layers below Upper (snapshots), top-most
	// first: the commit holds what they and Upper change in the image.
	Frozen []string `json:"frozen,omitempty"`
	// Account is the user devbox adds to /etc at every start (nil: none).
	Account *Account `json:"account,omitempty"`
	// MountPoints are the box's mount targets (absolute paths in the box)
	// besides the standard ones (StandardMountPoints).
	MountPoints []string `json:"mountPoints,omitempty"`
}

// StandardMountPoints are mounted in every box (runtime's mount plan).
var StandardMountPoints = []string{"/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}

// maxAccountFile bounds the /etc files read to undo devbox's edits; a
// larger one is committed as it is.
const maxAccountFile = 16 << 20

// ReadMain is the StageRead stage: a ReadRequest on stdin, the layer tar
// on fd 3. It runs as root of the box's user namespace.
func ReadMain() int {
	var req ReadRequest
	if err := json.NewDecoder(io.LimitReader(os.Stdin, 16<<20)).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "devbox commit-read: reading the request:", err)
		return 1
	}
	out := os.NewFile(3, "layer")
	bw := bufio.NewWriterSize(out, 1<<20)
	err := WriteLayer(req, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = out.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devbox commit-read:", err)
		return 1
	}
	return 0
}

type entry struct {
	rel      string // "etc/passwd": no leading or trailing slash
	src      int    // the directory of the layer it is in
	st       unix.Stat_t
	link     string // symlink target
	whiteout bool
	opaque   bool
	caps     []byte
	content  []byte // replaces the file's content (an undone account file)
	replaced bool
	skip     bool
}

func (e *entry) isDir() bool { return e.st.Mode&unix.S_IFMT == unix.S_IFDIR }
func (e *entry) isReg() bool { return e.st.Mode&unix.S_IFMT == unix.S_IFREG }

// layerReader walks one upper directory.
type layerReader struct {
	upper   int
	lowers  []int
	entries []*entry
	byRel   map[string]*entry
	cands   map[string]bool // directories devbox may have made
	cur     int             // the layer being walked
	frozen  []int
}

// WriteLayer writes the layer tar of req.Upper to w.
func WriteLayer(req ReadRequest, w io.Writer) error {
	upper, err := unix.Open(req.Upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the box's layer: %w", err)
	}
	lr := &layerReader{upper: upper, byRel: map[string]*entry{}, cands: map[string]bool{}}
	defer func() {
		unix.Close(lr.upper)
		for _, fd := range lr.lowers {
			unix.Close(fd)
		}
	}()
	for _, l := range req.Lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the image's layer %s: %w", l, err)
		}
		lr.lowers = append(lr.lowers, fd)
	}
	for _, l := range req.Frozen {
		fd, err := unix.Open(l, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the box's layer %s: %w", l, err)
		}
		lr.frozen = append(lr.frozen, fd)
	}
	defer func() {
		for _, fd := range lr.frozen {
			unix.Close(fd)
		}
	}()
	if len(lr.frozen) == 0 {
		if err := lr.walkLayer(upper); err != nil {
			return err
		}
	} else if err := lr.walkMerged(); err != nil {
		return err
	}
	if req.Account != nil {
		if err := lr.undoAccount(*req.Account); err != nil {
			return err
		}
	}
	lr.dropMountPoints(append(append([]string{}, StandardMountPoints...), req.MountPoints...))
	if req.Account != nil {
		lr.retime("etc", "etc/sudoers.d")
	}
	return lr.write(w)
}

// walkLayer walks the layer directory fd (kept open) from its top.
func (lr *layerReader) walkLayer(fd int) error {
	dup, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	lr.cur = fd
	return lr.walk(dup, "")
}

// walkMerged records what the box's frozen layers and its upper change in
// the image, as one layer: each layer, bottom first, applied to the entries
// of those below it as overlayfs stacks them (a whiteout removes, an opaque
// directory hides what is below it, a newer entry replaces).
func (lr *layerReader) walkMerged() error {
	result := map[string]*entry{}
	under := func(p string) {
		for k := range result {
			if strings.HasPrefix(k, p+"/") {
				delete(result, k)
			}
		}
	}
	layers := append([]int{}, lr.frozen...)
	slices.Reverse(layers)
	for _, fd := range append(layers, lr.upper) {
		lr.entries, lr.byRel = nil, map[string]*entry{}
		if err := lr.walkLayer(fd); err != nil {
			return err
		}
		for _, e := range lr.entries {
			old := result[e.rel]
			switch {
			case e.whiteout:
				delete(result, e.rel)
				under(e.rel)
				if lr.inImage(e.rel) {
					result[e.rel] = e
				}
				continue
			case e.isDir() && e.opaque:
				under(e.rel)
			case old != nil && old.isDir() && !e.isDir():
				under(e.rel)
			}
			result[e.rel] = e
		}
	}
	lr.entries = lr.entries[:0]
	for _, e := range result {
		lr.entries = append(lr.entries, e)
	}
	// Parents first, names sorted: the walk's order.
	key := func(e *entry) string { return strings.ReplaceAll(e.rel, "/", "\x00") }
	sort.Slice(lr.entries, func(i, j int) bool { return key(lr.entries[i]) < key(lr.entries[j]) })
	lr.byRel = map[string]*entry{}
	for _, e := range lr.entries {
		lr.byRel[e.rel] = e
	}
	return nil
}

// walk records dir's entries (dirfd, which it closes), names sorted,
// parents before children.
func (lr *layerReader) walk(dirfd int, rel string) error {
	d := os.NewFile(uintptr(dirfd), rel)
	names, err := d.Readdirnames(-1)
	if err != nil {
		d.Close()
		return fmt.Errorf("reading /%s: %w", rel, err)
	}
	sort.Strings(names)
	type sub struct {
		fd  int
		rel string
	}
	var subs []sub
	defer func() {
		for _, s := range subs {
			unix.Close(s.fd)
		}
	}()
	for _, n := range names {
		e := &entry{rel: path.Join(rel, n), src: lr.cur}
		if err := unix.Fstatat(dirfd, n, &e.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			d.Close()
			return fmt.Errorf("reading /%s: %w", e.rel, err)
		}
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFSOCK:
			continue // cannot be archived; a socket is runtime state anyway
		case unix.S_IFCHR:
			e.whiteout = e.st.Rdev == 0
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			k, err := unix.Readlinkat(dirfd, n, buf)
			if err != nil {
				d.Close()
				return fmt.Errorf("reading the link /%s: %w", e.rel, err)
			}
			e.link = string(buf[:k])
		case unix.S_IFDIR:
			fd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				d.Close()
				return fmt.Errorf("opening /%s: %w", e.rel, err)
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil || st.Ino != e.st.Ino || st.Dev != e.st.Dev {
				unix.Close(fd)
				d.Close()
				return fmt.Errorf("/%s changed while it was read", e.rel)
			}
			e.opaque = getxattr(fd, "user.overlay.opaque") == "y"
			e.caps = []byte(getxattr(fd, "security.capability"))
			subs = append(subs, sub{fd, e.rel})
		case unix.S_IFREG:
			if fd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0); err == nil {
				e.caps = []byte(getxattr(fd, "security.capability"))
				unix.Close(fd)
			}
		}
		lr.entries = append(lr.entries, e)
		lr.byRel[e.rel] = e
		if e.isDir() {
			// Children follow their directory: walk it now.
			s := subs[len(subs)-1]
			subs = subs[:len(subs)-1]
			if err := lr.walk(s.fd, s.rel); err != nil {
				d.Close()
				return err
			}
		}
	}
	return d.Close()
}

func getxattr(fd int, name string) string {
	buf := make([]byte, 256)
	n, err := unix.Fgetxattr(fd, name, buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}

// lowerOpen opens rel in the image's layers (top-most first) without
// following links; ENOENT when no layer has it or a whiteout hides it.
func (lr *layerReader) lowerOpen(rel string, flags int) (int, error) {
	for _, l := range lr.lowers {
		fd, err := unix.Openat2(l, rel, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS,
		})
		switch {
		case errors.Is(err, unix.ENOENT):
			continue
		case err != nil:
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			unix.Close(fd)
			return -1, unix.ENOENT
		}
		return fd, nil
	}
	return -1, unix.ENOENT
}

// inImage reports whether the image has rel (a link there counts).
func (lr *layerReader) inImage(rel string) bool {
	fd, err := lr.lowerOpen(rel, unix.O_PATH)
	if err == nil {
		unix.Close(fd)
		return true
	}
	return !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR)
}

// readBounded reads a regular file of at most max bytes.
func readBounded(fd int, max int64) ([]byte, bool) {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > max {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil || int64(len(b)) > max {
		return nil, false
	}
	return b, true
}

// undoAccount takes devbox's account edits out of the layer.
func (lr *layerReader) undoAccount(a Account) error {
	if e := lr.byRel["etc/sudoers.d/devbox-"+a.Name]; e != nil {
		e.skip = true
		lr.dropIfDevboxMade("etc/sudoers.d")
	}
	// The temporary files of a rewrite the init did not finish.
	for _, n := range []string{"etc/.devbox-passwd.tmp", "etc/.devbox-group.tmp", "etc/.devbox-shadow.tmp", "etc/sudoers.d/.devbox-devbox-" + a.Name + ".tmp"} {
		if e := lr.byRel[n]; e != nil {
			e.skip = true
		}
	}
	for rel, undo := range accountFiles {
		e := lr.byRel[rel]
		if e == nil || !e.isReg() {
			continue
		}
		fd, err := unix.Openat2(e.src, rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV})
		if err != nil {
			return fmt.Errorf("reading /%s: %w", rel, err)
		}
		upper, ok := readBounded(fd, maxAccountFile)
		if !ok {
			continue
		}
		var lower []byte
		if fd, err := lr.lowerOpen(rel, unix.O_RDONLY); err == nil {
			if lower, ok = readBounded(fd, maxAccountFile); !ok {
				continue
			}
		}
		content, keep := undo(upper, lower, a)
		if !keep {
			e.skip = true
			continue
		}
		e.content, e.replaced = content, true
	}
	return nil
}

// dropIfDevboxMade marks directory rel (and its parents) to be left out
// when the image lacks it and nothing else of the layer is left in it
// (decided in dropMountPoints).
func (lr *layerReader) dropIfDevboxMade(rel string) {
	for ; rel != "." && rel != "/" && rel != ""; rel = path.Dir(rel) {
		lr.cands[rel] = true
	}
}

// dropMountPoints leaves out the mount points devbox made: an empty file
// or directory at a mount target that the image lacks, and the
// directories made for it that hold nothing else.
func (lr *layerReader) dropMountPoints(targets []string) {
	for _, t := range targets {
		rel := strings.TrimPrefix(path.Clean("/"+t), "/")
		e := lr.byRel[rel]
		if rel == "" || e == nil || e.skip {
			continue
		}
		empty := (e.isReg() && e.st.Size == 0) || (e.isDir() && !lr.hasChildren(rel))
		if !empty || lr.inImage(rel) {
			continue
		}
		e.skip = true
		lr.dropIfDevboxMade(path.Dir(rel))
	}
	kept := map[string]int{}
	for i := len(lr.entries) - 1; i >= 0; i-- {
		e := lr.entries[i]
		if !e.skip && e.isDir() && kept[e.rel] == 0 && !e.opaque && (lr.cands[e.rel] && !lr.inImage(e.rel) || lr.copiedUp(e)) {
			e.skip = true
		}
		if !e.skip {
			kept[path.Dir(e.rel)]++
		}
	}
}

// copiedUp reports whether directory e is the image's, unchanged but for
// its time: overlayfs copied it up for a change below it (one left out
// now). Its mtime is the only difference, and a start of the box changes
// it (the account files are replaced in /etc): leaving it out keeps the
// layer the same.
func (lr *layerReader) copiedUp(e *entry) bool {
	fd, err := lr.lowerOpen(e.rel, unix.O_PATH)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	return st.Mode == e.st.Mode && st.Uid == e.st.Uid && st.Gid == e.st.Gid &&
		getxattr(fd, "security.capability") == string(e.caps)
}

// retime gives the directories devbox writes into at every start (by
// temporary file and rename, which sets their mtime) the time of the
// newest entry of theirs in the layer, or the image's time when none is:
// a start of the box then changes nothing in the layer.
func (lr *layerReader) retime(dirs ...string) {
	for _, d := range dirs {
		e := lr.byRel[d]
		if e == nil || e.skip || !e.isDir() {
			continue
		}
		var newest unix.Timespec
		found := false
		for _, c := range lr.entries {
			if c.skip || c.replaced || path.Dir(c.rel) != d {
				continue
			}
			if !found || c.st.Mtim.Sec > newest.Sec {
				newest, found = c.st.Mtim, true
			}
		}
		if !found {
			fd, err := lr.lowerOpen(d, unix.O_PATH)
			if err != nil {
				continue
			}
			var st unix.Stat_t
			if unix.Fstat(fd, &st) == nil {
				newest, found = st.Mtim, true
			}
			unix.Close(fd)
		}
		if found {
			e.st.Mtim = newest
		}
	}
}

func (lr *layerReader) hasChildren(rel string) bool {
	prefix := rel + "/"
	for _, e := range lr.entries {
		if strings.HasPrefix(e.rel, prefix) {
			return true
		}
	}
	return false
}

// write writes the entries not left out as a tar stream.
func (lr *layerReader) write(w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	buf := make([]byte, 1<<20)
	for _, e := range lr.entries {
		if e.skip {
			continue
		}
		mtime := time.Unix(int64(e.st.Mtim.Sec), 0).UTC()
		if e.whiteout {
			dir, base := path.Split(e.rel)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + ".wh." + base, ModTime: mtime}); err != nil {
				return err
			}
			continue
		}
		h := &tar.Header{
			Name:    e.rel,
			Mode:    int64(e.st.Mode & 0o7777),
			Uid:     int(e.st.Uid),
			Gid:     int(e.st.Gid),
			ModTime: mtime,
		}
		if len(e.caps) > 0 {
			h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(e.caps)}
		}
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			h.Typeflag, h.Name = tar.TypeDir, e.rel+"/"
		case unix.S_IFLNK:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		case unix.S_IFCHR, unix.S_IFBLK:
			h.Typeflag = tar.TypeChar
			if e.st.Mode&unix.S_IFMT == unix.S_IFBLK {
				h.Typeflag = tar.TypeBlock
			}
			h.Devmajor, h.Devminor = int64(unix.Major(e.st.Rdev)), int64(unix.Minor(e.st.Rdev))
		case unix.S_IFIFO:
			h.Typeflag = tar.TypeFifo
		case unix.S_IFREG:
			h.Typeflag = tar.TypeReg
			key := [2]uint64{e.st.Dev, e.st.Ino}
			if first, ok := links[key]; ok && e.st.Nlink > 1 && !e.replaced {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				break
			}
			if e.st.Nlink > 1 && !e.replaced {
				links[key] = e.rel
			}
			h.Size = e.st.Size
			if e.replaced {
				h.Size = int64(len(e.content))
			}
		default:
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing /%s: %w", e.rel, err)
		}
		if e.isDir() && e.opaque {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.rel + "/.wh..wh..opq", ModTime: mtime}); err != nil {
				return err
			}
		}
		if h.Typeflag != tar.TypeReg || h.Size == 0 {
			continue
		}
		if e.replaced {
			if _, err := tw.Write(e.content); err != nil {
				return err
			}
			continue
		}
		if err := lr.copyFile(tw, e, buf); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyFile copies a regular file of the layer, opened again without
// following links; it must still be the file walked.
func (lr *layerReader) copyFile(w io.Writer, e *entry, buf []byte) error {
	fd, err := unix.Openat2(e.src, e.rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV})
	if err != nil {
		return fmt.Errorf("reading /%s: %w", e.rel, err)
	}
	f := os.NewFile(uintptr(fd), e.rel)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Ino != e.st.Ino || st.Dev != e.st.Dev || st.Size != e.st.Size {
		return fmt.Errorf("/%s changed while it was read (hint: stop the box first)", e.rel)
	}
	if _, err := io.CopyBuffer(w, io.LimitReader(f, e.st.Size), buf); err != nil {
		return fmt.Errorf("reading /%s: %w", e.rel, err)
	}
	return nil
}
