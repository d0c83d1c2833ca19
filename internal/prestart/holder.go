package prestart

import (
	"strconv"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/trace"
)

// The warm holder (client side; the holder and its spare inits are
// package internal/holder, run by the box init's binary).
//
// A replayed or early-started run still clones its init with six
// namespaces, waits for the Go runtime to start in it and for newuidmap
// and newgidmap, two setuid programs that can only run once the init
// exists. A holder does that ahead of time: after such a run found none,
// devbox leaves a process in a user namespace with the run's id maps
// (written once), which keeps two spare inits ready in the other five
// namespaces (already root there, with /proc, /sys and /dev assembled),
// waiting on a socket in the runtime directory. The next replay or early
// start (without a terminal) of a run with the same start hands a spare
// its descriptors and arguments instead of cloning; the holder then
// prepares another. It exits after an idle time
// (HolderIdleEnv, default DefaultHolderIdle) when no box of its is
// running. Boxes started this way share the holder's user namespace, as
// rootless podman's containers share its pause process's; each still has
// its own mount, PID, UTS, IPC and network namespace.
//
// A spare inherits from the holder what a cloned init would inherit from
// devbox: cgroup, namespaces, limits, umask, capability bounds, seccomp
// and no_new_privs, scheduling and the security label. Fingerprint
// describes all of it, with the recipe and devbox's init binary; a spare
// serves only a run whose fingerprint is the one it was made for, and the
// holder's socket is named after it.

// HolderIdleEnv sets the holder's idle time in seconds (tests use a short
// one).
const HolderIdleEnv = "_DEVBOX_HOLDER_IDLE"

// DefaultHolderIdle is how long a holder waits for the next run.
const DefaultHolderIdle = 5 * time.Minute

// CLOSE_RANGE_CLOEXEC, for close_range(2) (sysCloseRange); package
// syscall has neither.
const closeRangeCloexec = 4

// HolderMagic starts a request to a spare.
const HolderMagic = "devbox-holder-1"

// holderOff reports whether DEVBOX_PRESTART keeps replays but not the
// holder.
func holderOff() bool { return getenv("DEVBOX_PRESTART") == "noholder" }

// Fingerprint describes the start of r's init as a holder would make it,
// and everything the init would inherit from the calling process.
func Fingerprint(r *Recipe, cgroup string) string {
	b := make([]byte, 0, 4096)
	add := func(k, v string) {
		b = append(append(append(append(b, k...), '='), v...), '\n')
	}
	add("exe", Guard(r.Exe))
	for _, e := range r.Env {
		add("env", e)
	}
	add("flags", strconv.FormatUint(uint64(r.Flags), 16))
	if r.Setpgid {
		add("setpgid", "1")
	}
	for _, k := range r.Kinds {
		add("fd", k)
	}
	for _, s := range r.UIDMap {
		add("uidmap", s)
	}
	for _, s := range r.GIDMap {
		add("gidmap", s)
	}
	add("cgroup", cgroup)
	for _, ns := range []string{"mnt", "net", "uts", "ipc", "pid", "user", "cgroup", "time"} {
		var buf [64]byte
		n, err := syscall.Readlink("/proc/self/ns/"+ns, buf[:])
		if err != nil {
			n = 0
		}
		add("ns", string(buf[:n]))
	}
	if st, ok := readFile("/proc/self/status", 1<<16); ok {
		for len(st) > 0 {
			i := 0
			for i < len(st) && st[i] != '\n' {
				i++
			}
			line := string(st[:i])
			for _, k := range statusKeys {
				if len(line) > len(k) && line[:len(k)] == k && line[len(k)] == ':' {
					add("status", line)
				}
			}
			if i == len(st) {
				break
			}
			st = st[i+1:]
		}
	}
	lim, _ := readFile("/proc/self/limits", 1<<16)
	add("limits", string(lim))
	adj, _ := readFile("/proc/self/oom_score_adj", 64)
	add("oom", string(adj))
	prio, _ := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	add("prio", strconv.Itoa(prio))
	label, _ := readFile("/proc/self/attr/current", 4096)
	add("label", string(label))
	return string(b)
}

// statusKeys are the /proc/self/status fields a child inherits.
var statusKeys = []string{"Umask", "Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "Seccomp_filters",
	"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Cpus_allowed_list", "Mems_allowed_list"}

// HolderPaths are the socket and lock file of the holder for fingerprint
// fp in the prestart directory dir (with its trailing slash).
func HolderPaths(dir, fp string) (sock, lock string) {
	n := dir + "h-" + bucket(hash([]string{fp}), 256)
	return n + ".sock", n + ".lock"
}

// viaHolder asks the holder at sock for its spare init and hands it the
// descriptors and arguments of r's start. It returns nil when there is no
// holder (absent: none listens there) or it declines (another
// fingerprint, or it is going away); then nothing has started.
func viaHolder(r Recipe, sock, fp, id string) (l *Launch, absent bool) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		syscall.Close(fd)
		return nil, err == syscall.ENOENT || err == syscall.ECONNREFUSED
	}
	l, files := prepare(r, id)
	if l == nil {
		syscall.Close(fd)
		return nil, false
	}
	msg := make([]byte, 0, len(fp)+1024)
	msg = append(append(append(append(msg, HolderMagic...), 0), fp...), 0)
	for _, a := range l.Args {
		msg = append(append(msg, a...), 0)
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f)
	}
	tv := syscall.Timeval{Sec: 2}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	if err := syscall.Sendmsg(fd, msg, syscall.UnixRights(fds...), nil, 0); err != nil {
		l.closeFrom(len(r.Kinds))
		syscall.Close(fd)
		return nil, false
	}
	var buf [64]byte
	n, err := syscall.Read(fd, buf[:])
	pid := 0
	if err == nil && n > 3 && string(buf[:3]) == "ok " {
		pid, _ = strconv.Atoi(string(buf[3:n]))
	}
	if pid <= 1 {
		// Declined, or the spare died: it holds nothing of ours.
		l.closeFrom(len(r.Kinds))
		syscall.Close(fd)
		trace.Mark("prestart: holder declined")
		return nil, false
	}
	l.Pid = pid
	l.held = true
	l.conn = fd
	trace.Mark("prestart: via holder, pid " + strconv.Itoa(pid))
	return l, false
}

// startEarly is the early start of r (prestart.go): a warm holder's spare
// when one serves r's start and the run has no terminal (a spare is in
// the holder's session), else a clone — and then a holder for the next
// run. dir is the prestart directory.
func startEarly(r Recipe, dir string) *Launch {
	id := randomID()
	if r.TTY != "00" || holderOff() {
		return start(r, id)
	}
	cg, ok := readFile("/proc/self/cgroup", 1<<16)
	if !ok {
		return start(r, id)
	}
	fp := Fingerprint(&r, string(cg))
	sock, lock := HolderPaths(dir, fp)
	l, absent := viaHolder(r, sock, fp, id)
	if l != nil {
		return l
	}
	if l = start(r, id); l != nil && absent {
		spawnHolder(r, sock, lock, fp)
	}
	return l
}

// Held reports whether l is a warm holder's spare (not the caller's
// child: HeldWait instead of wait4).
func (l *Launch) Held() bool { return l.held }

// HeldWait waits for the holder's report of a held init's wait status;
// false when the holder is gone without one.
func (l *Launch) HeldWait() (syscall.WaitStatus, bool) {
	tv := syscall.Timeval{}
	syscall.SetsockoptTimeval(l.conn, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	var buf [64]byte
	for {
		n, err := syscall.Read(l.conn, buf[:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n < 6 || string(buf[:5]) != "exit " {
			return 0, false
		}
		ws, err := strconv.Atoi(string(buf[5:n]))
		return syscall.WaitStatus(ws), err == nil
	}
}

// spawnHolder starts a holder for r's start: in a new user namespace (the
// maps are written by newuidmap and newgidmap, or directly for a
// single-id map, and not waited for: the holder waits for them), in a
// session of its own, with nothing of this process but its configuration
// on stdin. At most one attempt per 10 seconds and lock file.
func spawnHolder(r Recipe, sock, lock, fp string) {
	var st syscall.Stat_t
	now := time.Now()
	if syscall.Stat(lock, &st) == nil && now.Sub(time.Unix(st.Mtim.Sec, st.Mtim.Nsec)) < 10*time.Second {
		return
	}
	fd, err := syscall.Open(lock, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	syscall.Close(fd)
	ts := []syscall.Timespec{syscall.NsecToTimespec(now.UnixNano()), syscall.NsecToTimespec(now.UnixNano())}
	syscall.UtimesNano(lock, ts)
	// Descriptors this process inherited without close-on-exec would
	// reach the holder and stay open for its life (a pipe someone reads
	// to its end, say): marked now (close_range, Linux 5.11; this process
	// is about to exit anyway).
	if sysCloseRange == 0 {
		return
	}
	if _, _, e := syscall.Syscall(sysCloseRange, 3, ^uintptr(0), closeRangeCloexec); e != 0 {
		return
	}
	null, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer syscall.Close(null)
	var p [2]int
	if syscall.Pipe2(p[:], syscall.O_CLOEXEC) != nil {
		return
	}
	// Traced, the holder and its spares log their trace lines next to
	// the socket.
	errFd := null
	if trace.On() {
		if fd, err := syscall.Open(lock[:len(lock)-len(".lock")]+".log", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_APPEND|syscall.O_CLOEXEC, 0o600); err == nil {
			defer syscall.Close(fd)
			errFd = fd
		}
	}
	idle := getenv(HolderIdleEnv)
	if idle == "" {
		idle = strconv.Itoa(int(DefaultHolderIdle / time.Second))
	}
	env := []string{"_DEVBOX_STAGE=holder", "GOMAXPROCS=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if trace.On() {
		env = append(env, trace.Env+"=1")
	}
	pid, err := syscall.ForkExec(r.Exe, []string{"devbox-init", "holder"}, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{uintptr(p[0]), uintptr(null), uintptr(errFd)},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_VM | syscall.CLONE_VFORK,
			Setsid:      true,
			AmbientCaps: AllCaps(),
		},
	})
	syscall.Close(p[0])
	if err != nil {
		syscall.Close(p[1])
		return
	}
	cfg := append([]byte(sock+"\x00"+lock+"\x00"+idle+"\x00"+fp+"\x00"), r.Encode()...)
	writeAll(p[1], cfg)
	syscall.Close(p[1])
	ps := strconv.Itoa(pid)
	if r.UIDMap[0] == "-" {
		writeDirectMaps("/proc/"+ps+"/", r.UIDMap[1], r.GIDMap[1])
		return
	}
	// Not waited for: they end after this process, and whoever inherits
	// them reaps them.
	helper(r.UIDMap, ps)
	helper(r.GIDMap, ps)
	trace.Mark("prestart: holder spawned: " + sock)
}
