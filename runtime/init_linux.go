package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/devbox-dev/devbox/internal/termsafe"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/network/child"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime/mount"
	"golang.org/x/sys/unix"
)

// StageInit is the stage name of the box init (rootless.Spec.Stage).
const StageInit = "init"

// InitMain is the body of the "init" stage: PID 1 of the box. It reads the
// Spec from argv[1] (a path, or fd:N), runs Init and returns the exit code
// (also written to the descriptor in argv[2] when there is one): the
// command's (128+N when signal N killed it), 125 when the box could not be
// set up, 126 or 127 when the command could not be executed or found.
func InitMain() int {
	// Nothing the init inherited beyond stdio may reach the command.
	cloexecInherited()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "devbox: init: missing box spec path")
		return 125
	}
	if strings.HasPrefix(os.Args[1], "fd:") && earlySignals == nil {
		prepareSignals() // devbox run: the box runs one command
	}
	spec, err := readSpecArg(os.Args[1])
	if errors.Is(err, errNoSpec) {
		return 125 // devbox gave up before sending it, and says why
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "devbox: %s\n", termsafe.Line(err.Error()))
		return 125
	}
	trace.Mark("init: spec read")
	// Started with EnterInMain (devbox run): the spec was read while devbox
	// may still have been writing the id maps; now they are needed.
	rootless.Enter()
	code, err := Init(spec)
	if err != nil {
		// The image chooses the command and its directory: no escape of
		// theirs reaches the user's terminal.
		fmt.Fprintf(os.Stderr, "devbox: %s\n", termsafe.Line(err.Error()))
	}
	// devbox run passes a status descriptor: report the code now, before
	// the kernel tears the namespaces down.
	if len(os.Args) > 2 {
		if fd, err := strconv.Atoi(os.Args[2]); err == nil && fd > 2 {
			_, _ = unix.Write(fd, []byte(strconv.Itoa(code)))
			trace.Mark("init: exit code reported")
		}
	}
	return code
}

var errNoSpec = errors.New("no box spec")

// readSpecArg reads the spec from a file path, or with "fd:N" from the
// descriptor N, which devbox run closes after writing the spec (or without
// writing anything when it gives up: errNoSpec).
func readSpecArg(arg string) (*Spec, error) {
	n, ok := strings.CutPrefix(arg, "fd:")
	if !ok {
		return ReadSpec(arg)
	}
	fd, err := strconv.Atoi(n)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("bad spec descriptor %q", arg)
	}
	f := os.NewFile(uintptr(fd), "spec")
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the box spec: %w", err)
	}
	if len(b) == 0 {
		return nil, errNoSpec
	}
	return ParseSpec(b)
}

// Init sets up the box described by s in the current namespaces (it must
// run as root of the box's user namespace, PID 1 of its PID namespace, in a
// new mount namespace), runs the command and returns its exit code. When
// err is not nil it is printed as "devbox: <err>" and the code is 125, 126
// or 127.
func Init(s *Spec) (code int, err error) {
	ids, err := readIDMaps()
	if err != nil {
		return 125, err
	}
	plan, err := Plan(s, ids)
	if err != nil {
		return 125, err
	}
	if boxHardening, err = newHardening(s.Security); err != nil {
		return 125, err
	}
	// The command's thread is hardened while the box is set up.
	boxHardening.rearm = s.Agent
	boxHardening.warm()
	nw, err := beginNetwork(s)
	if err != nil {
		return 125, err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return 125, fmt.Errorf("making the mount namespace private: %w", err)
	}
	b, err := openBox(s)
	if err != nil {
		return 125, err
	}
	defer b.close()
	if s.ScratchInMemory {
		b.scratchInMemory()
	}
	if !b.memory {
		if err := b.lock(); err != nil {
			return 125, err
		}
	}
	if b.memory {
		// The box's writes are memory no process's RSS shows. Under
		// memory pressure the kernel is to pick the box — whose end
		// frees them — before devbox or the rest of the desktop.
		_ = os.WriteFile("/proc/self/oom_score_adj", []byte(scratchOOMScoreAdj), 0)
	}
	if s.Remove {
		defer func() {
			trace.Mark("init: removing the box")
			if rerr := b.remove(); rerr != nil && err == nil {
				code, err = 125, rerr
			}
		}()
	}
	if err := b.writeEtc(); err != nil {
		return 125, err
	}
	root := -1
	defer func() {
		if root >= 0 {
			unix.Close(root)
		}
	}()
	for _, m := range plan {
		switch m.Kind {
		case mount.Rootfs:
			root, err = b.mountRootfs(m)
		case mount.Pivot:
			if err = nw.configure(); err != nil {
				return netFailure(err)
			}
			// The last moment the box directory's mounts are in this
			// namespace: from now on the init holds only confined
			// clones of them.
			if err = b.confine(); err != nil {
				return 125, err
			}
			again := rootAgain(root, s.Mounts)
			err = pivot(root)
			if err == nil {
				err = hideRootAgain(again)
			}
			unix.Close(root)
			root = -1
			if err == nil {
				root, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			}
		default:
			err = mount.Apply(root, m)
			if err != nil && m.Kind == mount.Fresh && (m.Type == "proc" || m.Type == "sysfs") && errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("%w (hint: the kernel lets a user namespace mount %s only where the host's is fully visible; inside another container, it must not be partly masked)", err, m.Type)
			}
		}
		if err != nil {
			return 125, err
		}
	}
	// After the pivot: the helper's id maps are written through the box's
	// /proc. (It is the init's own program, a static one in a release
	// build; a dynamically linked devbox needs its loader in the box.)
	if err := lockReadOnly(root, readOnlyTargets(s), ids); err != nil {
		return 125, err
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return 125, fmt.Errorf("setting the hostname: %w", err)
	}
	if s.Net == "none" && !loUp {
		if err := child.LoopbackUp(); err != nil {
			return 125, fmt.Errorf("bringing up lo: %w", err)
		}
	}
	if s.Account != nil {
		if err := injectAccount(s.Account); err != nil {
			return 125, err
		}
	}
	// Nothing in the box may trace the init or open what it holds
	// through /proc/1 (its status pipe, network socket, the confined box
	// directory): not dumpable, and commands lack CAP_SYS_PTRACE unless
	// asked for.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return 125, fmt.Errorf("making the init undumpable: %w", err)
	}
	if s.Agent {
		b.release()
		return serveAgent(s, ids, os.NewFile(agentListenerFD, "agent-listener"))
	}
	u, err := resolveBoxUser(root, s.User, ids)
	if err != nil {
		return 125, err
	}
	if !s.Remove || b.memory {
		b.release()
	}
	trace.Mark("init: box ready")
	return runCommand(s, u, ids)
}

// box holds what the init keeps of ContainerDir across the pivot.
type box struct {
	spec   *Spec
	dir    *os.Root // ContainerDir, usable after the pivot
	dirFd  int
	diskFd int    // ContainerDir on the disk (dirFd unless in memory)
	lockFd int    // ContainerDir/LockFile, locked while the init lives
	memory bool   // dir is a tmpfs over ContainerDir (scratchInMemory)
	rootfs string // how the root filesystem was made
}

// LockFile is the file in ContainerDir whose lock the box's init holds: a
// plain file, so that the descriptor the init keeps for the box's life
// leads nowhere else.
const LockFile = ".init.lock"

func openBox(s *Spec) (*box, error) {
	dir, err := os.OpenRoot(s.ContainerDir)
	if err != nil {
		return nil, fmt.Errorf("opening the container directory: %w", err)
	}
	fd, err := unix.Open(s.ContainerDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("opening the container directory: %w", err)
	}
	return &box{spec: s, dir: dir, dirFd: fd, diskFd: fd, lockFd: -1}, nil
}

// lock makes this init the only one of a box whose writable layer is on
// the disk: a second one would mount the same upper directory twice,
// which overlayfs does not forbid but corrupts. (An in-memory layer is the
// init's own.) The lock goes with the init.
func (b *box) lock() error {
	lfd, err := unix.Openat(b.diskFd, LockFile, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err == nil {
		b.lockFd = lfd
		err = unix.Flock(lfd, unix.LOCK_EX|unix.LOCK_NB)
	}
	if err == unix.EWOULDBLOCK {
		return fmt.Errorf("box %s is already running: another init holds %s (hint: join it, or stop it first)", b.spec.ID, b.spec.ContainerDir)
	}
	if err != nil {
		return fmt.Errorf("locking the container directory: %w", err)
	}
	return nil
}

func (b *box) close() {
	b.release()
	if b.lockFd >= 0 {
		unix.Close(b.lockFd)
		b.lockFd = -1
	}
}

// release closes every descriptor of the box directory and keeps only the
// lock: the init of a persistent or kept box, or of one whose writes are in
// memory, never needs the directory again once the root filesystem is up.
func (b *box) release() {
	if b.dir != nil {
		b.dir.Close()
		b.dir = nil
	}
	if b.dirFd >= 0 {
		unix.Close(b.dirFd)
	}
	if b.diskFd != b.dirFd && b.diskFd >= 0 {
		unix.Close(b.diskFd)
	}
	b.dirFd, b.diskFd = -1, -1
}

// confine replaces the descriptors the init keeps of ContainerDir (the
// directory, or the tmpfs over it) by one of a detached, non-recursive
// clone of that directory's mount (open_tree OPEN_TREE_CLONE): a detached
// mount has no parent, so ".." from its root stays there, and a process
// that got hold of the descriptor (/proc/1/fd/N, with CAP_SYS_PTRACE
// added) could reach the box's own scratch files but nothing else of the
// host. It must run while those mounts are still in the init's namespace,
// i.e. before the pivot. The on-disk directory is no longer needed then.
func (b *box) confine() error {
	c, err := unix.OpenTree(b.dirFd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("confining the box directory (open_tree): %w", err)
	}
	dirFd, err := unix.Openat(c, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	unix.Close(c)
	if err != nil {
		return fmt.Errorf("confining the box directory: %w", err)
	}
	dir, err := os.OpenRoot(mount.FdPath(dirFd))
	if err != nil {
		unix.Close(dirFd)
		return fmt.Errorf("opening the container directory: %w", err)
	}
	b.release()
	b.dir, b.dirFd, b.diskFd = dir, dirFd, dirFd
	return nil
}

// writeEtc writes the box's hosts, hostname and resolv.conf into
// ContainerDir, to be bound over the image's.
func (b *box) writeEtc() error {
	for _, f := range EtcFiles(b.spec) {
		if old, err := b.dir.ReadFile(f.Name); err == nil && string(old) == f.Content {
			continue // a box's second start: rewriting costs more than reading
		}
		if err := b.dir.WriteFile(f.Name, []byte(f.Content), 0o644); err != nil {
			return fmt.Errorf("writing the box's %s: %w", f.Target, err)
		}
	}
	return nil
}

// scratchInMemory covers ContainerDir, in the init's own mount namespace
// only, with a tmpfs that then holds the box's writable layer and files:
// an ephemeral box's writes never reach the disk and vanish with its mount
// namespace, and nothing has to be deleted. overlayfs in a user namespace
// needs user xattrs on its upper directory, which tmpfs has since Linux
// 6.6; where it lacks them the tmpfs goes again and the disk is used.
func (b *box) scratchInMemory() {
	target := mount.FdPath(b.dirFd)
	opts := "mode=0700"
	if n := b.spec.ScratchBytes; n > 0 {
		opts += ",size=" + strconv.FormatInt(n, 10)
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return
	}
	fd, err := unix.Open(b.spec.ContainerDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil && !userXattrs(fd) {
		unix.Close(fd)
		err = unix.ENOTSUP
	}
	var dir *os.Root
	if err == nil {
		if dir, err = os.OpenRoot(mount.FdPath(fd)); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return
	}
	b.dir.Close()
	b.dir, b.dirFd, b.memory = dir, fd, true
}

// scratchOnDisk undoes scratchInMemory: the tmpfs goes and the box's files
// are written on the disk again.
func (b *box) scratchOnDisk() error {
	if !b.memory {
		return nil
	}
	if err := unix.Unmount(mount.FdPath(b.dirFd), unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting the box's tmpfs: %w", err)
	}
	dir, err := os.OpenRoot(mount.FdPath(b.diskFd))
	if err != nil {
		return fmt.Errorf("opening the container directory: %w", err)
	}
	b.dir.Close()
	unix.Close(b.dirFd)
	b.dir, b.dirFd, b.memory = dir, b.diskFd, false
	if err := b.lock(); err != nil {
		return err
	}
	return b.writeEtc()
}

// userXattrs reports whether the file system of directory dir takes user
// extended attributes.
func userXattrs(dir int) bool {
	fd, err := unix.Openat(dir, ".xattr-probe", unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	defer unix.Unlinkat(dir, ".xattr-probe", 0)
	defer unix.Close(fd)
	return unix.Fsetxattr(fd, "user.devbox.probe", []byte("1"), 0) == nil
}

// scratchOOMScoreAdj is the OOM score adjustment of a box whose writable
// layer is in memory (and of everything in it).
const scratchOOMScoreAdj = "500"

// boxState lists what the init creates in ContainerDir.
var boxState = []string{"upper", "work", "merged", "rootfs-copy", "rootfs-copy.tmp", "hosts", "hostname", "resolv.conf", LockFile}

// remove deletes the box's writable layer and files. As root of the user
// namespace the init may delete files of every mapped owner, which the
// host user could not. Whatever still runs in the box is killed first so
// nothing writes while the files go.
func (b *box) remove() error {
	_ = unix.Kill(-1, unix.SIGKILL)
	for {
		_, err := unix.Wait4(-1, nil, 0, nil)
		if err != nil && err != unix.EINTR {
			break
		}
	}
	if b.memory {
		return nil // the tmpfs goes with the mount namespace
	}
	if b.rootfs == rootfsCopy {
		// The box's mounts sit on the copy's own directories (/proc is
		// mounted on rootfs-copy/proc), which are busy until detached.
		detachSubmounts()
	}
	var errs []error
	for _, name := range boxState {
		if err := b.dir.RemoveAll(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing the box: %w", err)
	}
	return nil
}

// detachSubmounts lazily unmounts every mount of the namespace but "/",
// the most recent first.
func detachSubmounts() {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && f[4] != "/" {
			points = append(points, unescapeMountinfo(f[4]))
		}
	}
	for _, p := range slices.Backward(points) {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
}

// unescapeMountinfo decodes the \ooo escapes of a mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pivot makes root the process's root directory and detaches the old one:
// pivot_root(".", ".") stacks the old root on the new one, and the old root
// is then made a slave (nothing propagates back to the host) and unmounted.
func pivot(root int) error {
	old, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	defer unix.Close(old)
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("pivot_root: entering the root filesystem: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(old); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("pivot_root: making the old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("pivot_root: detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	return nil
}

func readIDMaps() (IDMaps, error) {
	var ids IDMaps
	for _, f := range []struct {
		path string
		m    *IDMap
	}{{"/proc/self/uid_map", &ids.UIDs}, {"/proc/self/gid_map", &ids.GIDs}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return ids, fmt.Errorf("reading the user namespace's id map: %w", err)
		}
		if *f.m, err = ParseIDMap(b); err != nil {
			return ids, fmt.Errorf("reading %s: %w", f.path, err)
		}
	}
	sg, err := os.ReadFile("/proc/self/setgroups")
	ids.Setgroups = err == nil && strings.TrimSpace(string(sg)) != "deny"
	return ids, nil
}

// maxDBFile bounds what is read of /etc/passwd and /etc/group.
const maxDBFile = 16 << 20

// readBoxFile reads a regular file of the box (a missing one is empty).
func readBoxFile(root int, path string) ([]byte, error) {
	fd, err := mount.OpenFile(root, path)
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the box's %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDBFile))
	if err != nil {
		return nil, fmt.Errorf("reading the box's %s: %w", path, err)
	}
	return b, nil
}

// resolveBoxUser resolves spec against the box's /etc/passwd and /etc/group
// and checks that its ids exist in the user namespace. Supplementary
// groups that are not mapped are dropped.
func resolveBoxUser(root int, spec string, ids IDMaps) (User, error) {
	passwd, err := readBoxFile(root, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	group, err := readBoxFile(root, "/etc/group")
	if err != nil {
		return User{}, err
	}
	u, err := ResolveUser(spec, passwd, group)
	if err != nil {
		return User{}, err
	}
	if !ids.UIDs.Contains(u.UID) {
		return User{}, fmt.Errorf("user %s: uid %d is not mapped in the box's user namespace (hint: %s)", userName(spec), u.UID, mappedHint(ids.UIDs, "uids"))
	}
	if !ids.GIDs.Contains(u.GID) {
		return User{}, fmt.Errorf("user %s: gid %d is not mapped in the box's user namespace (hint: %s)", userName(spec), u.GID, mappedHint(ids.GIDs, "gids"))
	}
	u.Groups = ids.GIDs.Mapped(u.Groups)
	return u, nil
}

func userName(spec string) string {
	if spec == "" {
		return "root"
	}
	return spec
}

func mappedHint(m IDMap, what string) string {
	var parts []string
	for _, r := range m {
		parts = append(parts, strconv.FormatUint(uint64(r.Inside), 10)+"-"+strconv.FormatUint(uint64(r.Inside)+uint64(r.Count)-1, 10))
	}
	return "the box maps " + what + " " + strings.Join(parts, ", ") + "; more need subordinate ids in /etc/subuid and /etc/subgid"
}

// cloexecInherited marks every descriptor above 2 close-on-exec.
func cloexecInherited() {
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	// Before Linux 5.11.
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd > 2 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

func warn(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "devbox: warning: %s\n", termsafe.Line(fmt.Sprintf(format, args...)))
}

// WarmUp readies a box init that waits for its run (a warm holder's spare,
// internal/holder) as far as no run's spec is needed: it becomes root of
// its user namespace, brings up lo when it has a network namespace of its
// own (newNet), decodes a sample spec with every field set, so that
// decoding the real one does not build the decoder's type caches first,
// and registers the signals it will forward.
func WarmUp(newNet bool) {
	if err := rootless.EnterEarly(); err != nil {
		fmt.Fprintf(os.Stderr, "devbox: entering the box's user namespace: %v\n", err)
		os.Exit(125)
	}
	if newNet && child.LoopbackUp() == nil {
		loUp = true
	}
	s := Spec{Version: SpecVersion, ID: "warmup", Lowers: []string{"/"}, ContainerDir: "/", Args: []string{"true"},
		Env: []string{"A=B"}, Hostname: "h", Net: "none", Mounts: []Mount{{Source: "/", Target: "/"}},
		Account: &Account{Name: "a"}}
	if b, err := json.Marshal(&s); err == nil {
		_, _ = ParseSpec(b)
	}
	// devbox run's boxes run one command: its signals, registered now.
	// Until the spare is taken, one that would end a process ends it.
	prepareSignals()
	c := <-earlySignals
	idle.stop, idle.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(idle.done)
		for {
			select {
			case s := <-c:
				if n := s.(unix.Signal); n == unix.SIGINT || n == unix.SIGTERM || n == unix.SIGHUP || n == unix.SIGQUIT {
					os.Exit(128 + int(n))
				}
			case <-idle.stop:
				earlySignals <- c
				return
			}
		}
	}()
}

// idle is the goroutine that watches a waiting spare's signals.
var idle struct{ stop, done chan struct{} }

// Taken is called when a spare (WarmUp) becomes a run's init: from now on
// signals are the run's command's.
func Taken() {
	if idle.stop == nil {
		return
	}
	close(idle.stop)
	<-idle.done
	idle.stop = nil
}

// loUp: WarmUp brought lo up.
var loUp bool

// rootAgain returns where the box's root file system shows a second time
// in the box: under a bind whose host source holds it (the user's home
// holds the store, and so the box's own root with its /proc and /sys, in
// a dev box). Paths are the box's, as they will be after the pivot.
func rootAgain(root int, mounts []Mount) []string {
	rootPath, err := os.Readlink(mount.FdPath(root))
	if err != nil || !path.IsAbs(rootPath) {
		return nil
	}
	var out []string
	for _, m := range mounts {
		if m.Tmpfs || m.Source == "" {
			continue
		}
		for _, src := range []string{m.Source, resolved(m.Source)} {
			if rel, ok := strings.CutPrefix(rootPath, strings.TrimSuffix(src, "/")+"/"); ok && src != "" {
				out = append(out, path.Join(m.Target, rel))
				break
			}
		}
	}
	return out
}

func resolved(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return ""
	}
	return r
}

// hideRootAgain detaches the box's root file system (and what is mounted
// on it: the box's /proc, /sys, /dev) where a bind made it show again.
// There it would be the box's /proc without the masks over it, and a
// fully visible proc that lets the kernel allow new proc mounts in nested
// namespaces.
func hideRootAgain(paths []string) error {
	for _, p := range paths {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("hiding the box's own root at %s: %w", p, err)
		}
	}
	return nil
}
