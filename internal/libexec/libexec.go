// Package libexec carries devbox's helper programs inside devbox, so that
// devbox stays one file while the processes it starts for every box are
// small programs instead of the whole CLI: the box init (cmd/devbox-init)
// and the network helper (cmd/devbox-net) start in a fraction of the CLI's
// time, and the CLI itself links neither the init's code paths it does
// not need nor gVisor's network stack (docs/benchmarks.md).
//
// `make build` (and the release build) compile both for the target
// architecture into this directory with build.sh and build devbox with the
// devbox_embedinit tag, which embeds them. A plain `go build` embeds
// nothing: devbox then runs its own binary as those processes, as the
// tests' binaries do.
//
// At run time Path writes an embedded program once into devbox's private
// runtime directory, as NAME-DIGEST/NAME (so that ps shows NAME), and
// returns that path; writing a new version removes the copies other
// versions left and have not used for an hour. Where that directory is mounted noexec, the program goes into a
// sealed memfd instead, for each process that needs it.
package libexec

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The embedded programs.
const (
	Init = "devbox-init"
	Net  = "devbox-net"
	// CLI is the full command line (cmd/devbox-cli), which devbox's front
	// (cmd/devbox) embeds instead of the other two (build tag
	// devbox_embedcli): the CLI embeds those.
	CLI = "devbox-cli"
)

type prog struct {
	blob []byte
	sum  string
}

// progs is filled by the embedding file of the build (embed_*.go).
var progs = map[string]prog{}

// Embedded reports whether this build carries program name.
func Embedded(name string) bool { return len(progs[name].blob) > 0 }

// Digest returns the SHA-256 of embedded program name, "" when there is
// none.
func Digest(name string) string {
	if !Embedded(name) {
		return ""
	}
	return strings.TrimSpace(progs[name].sum)
}

// Path returns the path of embedded program name under dir (devbox's
// private runtime directory, created when missing), writing it there first
// if it is not there yet. It returns "" and no error when the build embeds
// no such program.
func Path(name, dir string) (string, error) {
	p := progs[name]
	if len(p.blob) == 0 {
		return "", nil
	}
	s := strings.TrimSpace(p.sum)
	if len(s) < 16 {
		return "", fmt.Errorf("embedded %s: no digest", name)
	}
	base := dir
	dir = filepath.Join(dir, name+"-"+s[:16])
	path := filepath.Join(dir, name)
	if complete(path, len(p.blob)) {
		// Mark it in use, so that another version's first use does not
		// take it away from a devbox of this one that is about to run it.
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, dir, nil, 0)
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	if noexec(base) {
		return memfd(name, p.blob)
	}
	f, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(p.blob)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o500)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	removeOld(base, name, filepath.Base(dir))
	return path, nil
}

// Memfd returns the path of a sealed memfd holding embedded program name
// (/proc/self/fd/N), for a process without a runtime directory of its
// own; "" and no error when the build embeds no such program.
func Memfd(name string) (string, error) {
	p := progs[name]
	if len(p.blob) == 0 {
		return "", nil
	}
	return memfd(name, p.blob)
}

// SealedCopy returns the path of a sealed memfd holding embedded program
// name (as Memfd), or, when the build embeds none, a copy of the running
// program (devbox itself, which then serves as that program): for a
// process whose box may trace it and so open its program for writing
// through /proc/PID/exe, where the file in the runtime directory (or
// devbox's own binary) would be replaced for every later start.
func SealedCopy(name string) (string, error) {
	if Embedded(name) {
		return Memfd(name)
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return "", fmt.Errorf("copying devbox for %s: %w", name, err)
	}
	return memfd(name, self)
}

// unusedFor is how long a copy of another version must have gone unused
// before removeOld takes it: two devbox versions may run side by side (an
// upgrade while boxes run, two builds in one session), and each marks its
// copy whenever it uses it.
const unusedFor = time.Hour

// removeOld removes the copies other devbox versions wrote of program name
// under base that none has used for unusedFor: the runtime directory is
// usually memory. A box still running one keeps its process; only the file
// goes.
func removeOld(base, name, keep string) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if n != keep && e.IsDir() && strings.HasPrefix(n, name+"-") && len(n) == len(keep) {
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < unusedFor {
				continue
			}
			_ = os.RemoveAll(filepath.Join(base, n))
		}
	}
}

// complete reports whether path is a complete copy written by Path: a
// regular file of ours, mode 0500, of the embedded size. (Its directory's
// name carries the digest, and the runtime directory is private, so nobody
// else can have put it there.)
func complete(path string, size int) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o500 || fi.Size() != int64(size) {
		return false
	}
	st, isStat := fi.Sys().(*syscall.Stat_t)
	return isStat && int(st.Uid) == os.Getuid()
}

// noexec reports whether dir is on a file system mounted noexec.
func noexec(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Flags&unix.ST_NOEXEC != 0
}

// memfd returns /proc/self/fd/N of a sealed memfd holding blob. The
// descriptor stays open (close-on-exec) for the life of the process, so
// the path can be executed by any child started from it.
func memfd(name string, blob []byte) (string, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("writing %s: memfd_create: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(blob); err != nil {
		f.Close()
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return "", fmt.Errorf("sealing %s: %w", name, err)
	}
	// A high descriptor: the low ones are where a child's extra files go,
	// and the child resolves the path after they are in place.
	hi, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 100)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	keep = append(keep, os.NewFile(uintptr(hi), name))
	return "/proc/self/fd/" + strconv.Itoa(hi), nil
}

// keep holds the memfds handed out by memfd.
var keep []*os.File

// InstalledDir is where a package installs the embedded programs beside
// the front, relative to the front's directory (/usr/bin → /usr/libexec/devbox).
const InstalledDir = "../libexec/devbox"

// Installed returns the path of program name as a package installed it
// beside the front at front (InstalledDir/NAME, with NAME.sha256 next to
// it), or "" unless that file is this build's embedded program and only
// root can change it: a regular file and directory owned by root that
// nobody else may write, in directories nobody else may write either
// (or sticky ones), and a digest file naming the embedded program's
// digest. A host whose AppArmor profile lets devbox create user
// namespaces names that path; a copy in the user's runtime directory
// could not be named safely.
func Installed(name, front string) string {
	want := Digest(name)
	if want == "" || !filepath.IsAbs(front) {
		return ""
	}
	dir := filepath.Join(filepath.Dir(front), InstalledDir)
	path := filepath.Join(dir, name)
	for _, p := range []string{dir, path, path + ".sha256"} {
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Uid != 0 || st.Mode&0o022 != 0 {
			return ""
		}
		if isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR; isDir != (p == dir) || !isDir && st.Mode&unix.S_IFMT != unix.S_IFREG {
			return ""
		}
	}
	// Above it too, up to /: a directory another user may write (a
	// group-writable /usr/local, a home) lets that user move the directory
	// away between this check and the exec and put a program of theirs at
	// the path (TestInstalledWritableAncestor). Sticky ones (/tmp) do not.
	if !onlyOwnerWrites(filepath.Dir(dir), "/", 0) {
		return ""
	}
	f, err := os.OpenFile(path+".sha256", os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 129)
	n, _ := f.Read(b)
	if n == 0 || n > 128 || strings.TrimSpace(string(b[:n])) != want {
		return ""
	}
	return path
}

// onlyOwnerWrites reports whether dir and every directory above it up to
// top are directories of owner's that nobody else may write, or sticky
// ones (where nobody else can move an entry away).
func onlyOwnerWrites(dir, top string, owner uint32) bool {
	for d := dir; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if unix.Lstat(d, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != owner ||
			st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
			return false
		}
		if d == top || d == "/" {
			return true
		}
	}
}
