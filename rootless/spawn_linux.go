package rootless

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"golang.org/x/sys/unix"
)

// Namespaces selects the namespaces created with (and owned by) the box's
// user namespace.
type Namespaces struct {
	Mount, PID, UTS, IPC, Net bool
}

func (n Namespaces) flags() uintptr {
	var f uintptr
	if n.Mount {
		f |= unix.CLONE_NEWNS
	}
	if n.PID {
		f |= unix.CLONE_NEWPID
	}
	if n.UTS {
		f |= unix.CLONE_NEWUTS
	}
	if n.IPC {
		f |= unix.CLONE_NEWIPC
	}
	if n.Net {
		f |= unix.CLONE_NEWNET
	}
	return f
}

// Spec describes the process to start in the keep-id namespace.
type Spec struct {
	Stage string // required: the devbox stage the target process runs
	// Exe is the program to run as the target instead of devbox's own
	// binary: the embedded box init (internal/libexec). When it cannot be
	// executed (a noexec runtime directory), Start falls back to devbox.
	Exe string
	// Sealed: Exe is a sealed copy that the target's box may trace
	// (box.SealedInitExe); a failure to execute it is an error, never a
	// fall back to devbox's own file.
	Sealed     bool
	Args       []string // optional: argv[1:] of the target process
	Env        []string // optional: the target's environment (private keys are added)
	Namespaces Namespaces
	Mapping    Mapping // required: from Detect
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	ExtraFiles []*os.File // seen by the target as fd 3, 4, …
	Dir        string
	// Setpgid puts the helpers and the target in their own process group,
	// so that terminal-generated signals reach only the caller, which
	// forwards them once.
	Setpgid bool
	// Detach lets the target outlive the caller (a persistent box): no
	// parent-death signal, and a session of its own.
	Detach bool
	// Cgroup, when not nil, is the open directory of the box's cgroup v2:
	// the target is cloned straight into it (clone3 CLONE_INTO_CGROUP), so
	// it and everything it starts live there from their first instruction.
	// nil: inherit the caller's cgroup.
	Cgroup *os.File
	// EnterInMain lets the target initialise its packages before it waits
	// for the id maps; its main must call Enter before it needs them.
	EnterInMain bool
	// Warm lets a warm holder's spare (internal/warm) be the target when
	// one serves this start, and leaves a holder for the next start when
	// none does. Only for a target on the caller's stdio that dies with the
	// caller, with devbox run's ExtraFiles (warm.Start.Handshake).
	Warm *Warm
}

// Warm is what Spec.Warm says about a start.
type Warm struct {
	RuntimeDir string // $XDG_RUNTIME_DIR: where holders listen
	Handshake  bool   // warm.Start.Handshake
}

// Process is a started target stage: the init of the new namespaces.
type Process struct {
	proc *os.Process
	cmd  *exec.Cmd // nil for an adopted early start
	// alive is the write end of the start pipe. It stays open while the
	// caller lives, so that a target that must die with the caller can tell
	// when the caller is already gone (see enter).
	alive *os.File
	// held is a warm holder's spare (internal/warm): not a child of ours,
	// its wait status comes from the holder.
	held *warm.Held
	// start is the start as a holder makes it, when Spec.Warm allowed one.
	start *warm.Start
}

// Start is the process's start as a warm holder or a replay repeats it, or
// nil when its Spec had no Warm.
func (p *Process) Start() *warm.Start { return p.start }

// Pid is the host pid of the target stage.
func (p *Process) Pid() int { return p.proc.Pid }

// Signal sends sig to the target.
func (p *Process) Signal(sig os.Signal) error {
	if s, ok := sig.(syscall.Signal); ok && p.held != nil {
		return p.held.Signal(s)
	}
	return p.proc.Signal(sig)
}

// Wait waits for the target and returns its exit code (128+N when it was
// killed by signal N).
func (p *Process) Wait() (int, error) {
	if p.held != nil {
		code, ok := p.held.Wait()
		if p.alive != nil {
			p.alive.Close()
		}
		if !ok {
			return -1, errors.New("waiting for the box init: its warm holder is gone")
		}
		return code, nil
	}
	var err error
	if p.cmd != nil {
		err = p.cmd.Wait()
	} else {
		var st *os.ProcessState
		if st, err = p.proc.Wait(); err == nil && !st.Success() {
			err = &exec.ExitError{ProcessState: st}
		}
	}
	if p.alive != nil {
		p.alive.Close()
	}
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return -1, fmt.Errorf("waiting for the box init: %w", err)
}

// Run starts spec and waits for it.
func Run(spec Spec) (int, error) {
	p, err := Start(spec)
	if err != nil {
		return -1, err
	}
	return p.Wait()
}

// Start clones spec.Stage into a new keep-id user namespace owning the
// namespaces spec asks for, and returns once the target runs there as uid 0
// with a full capability set (see the package documentation).
func Start(spec Spec) (*Process, error) {
	p, err := start(spec)
	if err != nil && spec.Exe != "" && !spec.Sealed && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOEXEC) || errors.Is(err, syscall.ENOENT)) {
		spec.Exe = ""
		return start(spec)
	}
	return p, err
}

func start(spec Spec) (*Process, error) {
	m := spec.Mapping
	exe := spec.Exe
	if exe == "" {
		exe = "/proc/self/exe"
	}
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       append([]string{"devbox-" + spec.Stage}, spec.Args...),
		Env:        append(ScrubEnv(spec.Env), envStage+"="+spec.Stage, envNFDs+"="+strconv.Itoa(len(spec.ExtraFiles))),
		Stdin:      spec.Stdin,
		Stdout:     spec.Stdout,
		Stderr:     spec.Stderr,
		Dir:        spec.Dir,
		ExtraFiles: slices.Clone(spec.ExtraFiles),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER | spec.Namespaces.flags(),
			Pdeathsig:  syscall.SIGKILL,
			Setpgid:    spec.Setpgid,
		},
	}
	if spec.Detach {
		cmd.SysProcAttr.Pdeathsig = 0
		cmd.SysProcAttr.Setsid = true
		cmd.SysProcAttr.Setpgid = false
	}
	if spec.Cgroup != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(spec.Cgroup.Fd())
	}
	// The capabilities a new user namespace gives its first process are
	// carried over its exec as ambient capabilities; the target waits on
	// the start pipe until its maps are written and then makes itself uid
	// 0 (enter). Keep-id maps name subordinate ids, so newuidmap and
	// newgidmap write them once the child exists; a single-id map (0 → you)
	// is written by this process itself.
	cmd.SysProcAttr.AmbientCaps = warm.AllCaps()
	// Shared memory until the exec: no copy of the caller's page tables,
	// and nothing the child waits for is written by this thread before
	// the exec (the maps come after it), so the vfork cannot deadlock.
	cmd.SysProcAttr.Cloneflags |= unix.CLONE_VM | unix.CLONE_VFORK
	uidCmd, gidCmd := mapCommands(m)
	mode := "keep"
	if spec.Detach {
		mode = "detach"
	}
	if m.Single() {
		mode += ",nogroups" // setgroups is denied in a namespace whose maps are written without newgidmap
	}
	if spec.EnterInMain {
		mode += ",main"
	}
	startEnv := envStart + "=" + strconv.Itoa(3+len(cmd.ExtraFiles)) + "," + mode
	var ws *warm.Start
	var fp string
	// A holder is asked and started only in a runtime directory nobody
	// else can change (warm.Private).
	if spec.Warm != nil && !spec.Detach && cmd.Dir == "" && len(uidCmd) > 0 && !warm.Off() &&
		stdioFiles(cmd) != nil && warm.Private(spec.Warm.RuntimeDir) {
		ws = &warm.Start{Exe: cmd.Path, Args: cmd.Args, Env: append(slices.Clone(cmd.Env), startEnv),
			Flags: cmd.SysProcAttr.Cloneflags &^ (unix.CLONE_VM | unix.CLONE_VFORK), Setpgid: spec.Setpgid,
			Handshake: spec.Warm.Handshake, UIDMap: uidCmd, GIDMap: gidCmd}
		fp = warm.Fingerprint(ws, spec.Cgroup != nil)
	}
	startR, startW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the start pipe: %w", err)
	}
	defer startR.Close()
	if fp != "" {
		p, absent := viaHolder(spec, cmd, fp, startR, startW)
		if p != nil {
			p.start = ws
			return p, nil
		}
		if absent {
			defer warm.Spawn(spec.Warm.RuntimeDir, ws, fp)
		}
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, startR)
	cmd.Env = append(cmd.Env, startEnv)
	trace.Mark("rootless: cloning")
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	trace.Mark("rootless: child executed")
	if err != nil {
		startW.Close()
		return nil, diagnoseStart(err)
	}
	startR.Close()
	fail := func(err error) (*Process, error) {
		startW.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	if err := writeMaps(m, cmd.Process.Pid); err != nil {
		return fail(err)
	}
	trace.Mark("rootless: maps written")
	if _, err := startW.Write([]byte{'\n'}); err != nil {
		return fail(fmt.Errorf("starting the box init: %w", err))
	}
	p := &Process{proc: cmd.Process, cmd: cmd, alive: startW}
	if spec.Detach {
		startW.Close()
		p.alive = nil
	}
	p.start = ws
	return p, nil
}

// viaHolder hands cmd's descriptors and the read end of the start pipe to
// a warm holder's spare (warm.Take) that serves fingerprint fp, moved into
// cmd's cgroup when it has one; nil and absent when no holder listens, nil
// alone when one declined or the spare could not be moved (the caller
// clones then).
func viaHolder(spec Spec, cmd *exec.Cmd, fp string, startR, startW *os.File) (*Process, bool) {
	var files []int
	for _, f := range append(stdioFiles(cmd), append(cmd.ExtraFiles, startR)...) {
		files = append(files, int(f.Fd()))
	}
	cg := -1
	if cmd.SysProcAttr.UseCgroupFD {
		cg = cmd.SysProcAttr.CgroupFD
	}
	h, absent := warm.Take(spec.Warm.RuntimeDir, fp, cmd.Args, files, cg, int(startW.Fd()))
	if h == nil {
		return nil, absent
	}
	proc, _ := os.FindProcess(h.Pid) // never fails on Linux
	return &Process{proc: proc, held: h, alive: startW}, false
}

// stdioFiles returns cmd's stdin, stdout and stderr when all three are
// files (devbox's own, or the pipes devbox relays in place of a file or
// terminal, internal/boxstdio), which a holder's spare can be given; nil
// otherwise.
func stdioFiles(cmd *exec.Cmd) []*os.File {
	in, ok1 := cmd.Stdin.(*os.File)
	out, ok2 := cmd.Stdout.(*os.File)
	errOut, ok3 := cmd.Stderr.(*os.File)
	if !ok1 || !ok2 || !ok3 || in == nil || out == nil || errOut == nil {
		return nil
	}
	return []*os.File{in, out, errOut}
}

// mapCommand is the helper's path and its arguments after the pid.
func mapCommand(tool string, args []string) []string {
	path, err := exec.LookPath(tool)
	if err != nil {
		return nil
	}
	return append([]string{path}, args...)
}

// mapCommands says how the id maps of m are written, as a warm start
// records it (internal/warm): newuidmap's and newgidmap's paths and
// arguments after the pid, or "-" and the one map line for a single-id
// mapping, which the caller writes itself.
func mapCommands(m Mapping) (uid, gid []string) {
	if m.Single() {
		line := func(id int) []string { return []string{"-", "0 " + strconv.Itoa(id) + " 1"} }
		return line(m.UID), line(m.GID)
	}
	return mapCommand("newuidmap", mapArgs(keepIDMaps(m.UID, m.SubUIDs))), mapCommand("newgidmap", mapArgs(keepIDMaps(m.GID, m.SubGIDs)))
}

// writeMaps writes the id maps of m for the user namespace of pid.
func writeMaps(m Mapping, pid int) error {
	if m.Single() {
		if err := warm.WriteSingleMaps(pid, "0 "+strconv.Itoa(m.UID)+" 1", "0 "+strconv.Itoa(m.GID)+" 1"); err != nil {
			return fmt.Errorf("writing the box's id map: %w (hint: run devbox doctor)", err)
		}
		return nil
	}
	// The two helpers are independent: run them at the same time.
	gidErr := make(chan error, 1)
	go func() { gidErr <- writeMap("newgidmap", pid, mapArgs(keepIDMaps(m.GID, m.SubGIDs))) }()
	err := writeMap("newuidmap", pid, mapArgs(keepIDMaps(m.UID, m.SubUIDs)))
	if gerr := <-gidErr; err == nil {
		err = gerr
	}
	return err
}

func writeMap(tool string, pid int, args []string) error {
	path, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("%s not found (hint: install it: sudo apt install uidmap, or sudo dnf install shadow-utils; then run devbox doctor)", tool)
	}
	var stderr bytes.Buffer
	c := exec.Command(path, append([]string{strconv.Itoa(pid)}, args...)...)
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		hint := "check /etc/subuid and /etc/subgid, and that " + path + " is setuid root or has file capabilities"
		return fmt.Errorf("%s failed: %s (hint: %s; run devbox doctor)", tool, msg, hint)
	}
	return nil
}

// diagnoseStart turns a failed clone(CLONE_NEWUSER) into an error the user
// can act on.
func diagnoseStart(err error) error {
	if b, rerr := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); rerr == nil && strings.TrimSpace(string(b)) == "0" {
		return fmt.Errorf("creating user namespace: %w (hint: unprivileged user namespaces are disabled: sudo sysctl -w kernel.unprivileged_userns_clone=1; devbox doctor checks the rest)", err)
	}
	if b, rerr := os.ReadFile("/proc/sys/user/max_user_namespaces"); rerr == nil && strings.TrimSpace(string(b)) == "0" {
		return fmt.Errorf("creating user namespace: %w (hint: sudo sysctl -w user.max_user_namespaces=28633; devbox doctor checks the rest)", err)
	}
	if b, rerr := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); rerr == nil && strings.TrimSpace(string(b)) == "1" {
		exe, _ := os.Executable()
		return fmt.Errorf("creating user namespace: %w (hint: AppArmor restricts unprivileged user namespaces; allow devbox with a profile for %s: run devbox doctor for it)", err, exe)
	}
	return fmt.Errorf("creating user namespace: %w (hint: run devbox doctor)", err)
}
