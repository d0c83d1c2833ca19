package rootless

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Namespaces selects the namespaces created next to the inner user namespace.
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
	Stage      string   // required: the devbox stage the target process runs
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
	// P2 is cloned straight into it (clone3 CLONE_INTO_CGROUP), so P2, the
	// target and everything they start live there from their first
	// instruction. nil: inherit the caller's cgroup.
	Cgroup *os.File
}

// innerSpec crosses from P1 to P2 as JSON in envInner.
type innerSpec struct {
	Stage     string                 `json:"stage"`
	Flags     uintptr                `json:"flags"`
	UIDMap    []syscall.SysProcIDMap `json:"uidMap"`
	GIDMap    []syscall.SysProcIDMap `json:"gidMap"`
	Setgroups bool                   `json:"setgroups"`
	Args      []string               `json:"args"`
	// ParentPID is P1's pid when P2 must die with it (not detached).
	ParentPID int `json:"parentPid,omitempty"`
}

// Process is a started target with its two intermediate processes.
type Process struct {
	cmd *exec.Cmd
}

// Pid is the host pid of the outer process (P2); signals sent to it are
// forwarded to the target.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal forwards sig to the target through P2.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the target and returns its exit code (128+N when it was
// killed by signal N).
func (p *Process) Wait() (int, error) {
	err := p.cmd.Wait()
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
	return -1, fmt.Errorf("waiting for namespace helper: %w", err)
}

// Run starts spec and waits for it.
func Run(spec Spec) (int, error) {
	p, err := Start(spec)
	if err != nil {
		return -1, err
	}
	return p.Wait()
}

// Start creates the outer and inner user namespaces and starts spec.Stage in
// the inner one, as uid 0 with a full capability set there.
func Start(spec Spec) (*Process, error) {
	m := spec.Mapping
	in := innerSpec{Stage: spec.Stage, Flags: spec.Namespaces.flags(), Args: spec.Args}
	if !spec.Detach {
		in.ParentPID = os.Getpid()
	}
	if m.Single() {
		in.UIDMap = innerMaps(0, nil)
		in.GIDMap = innerMaps(0, nil)
	} else {
		in.UIDMap = innerMaps(m.UID, m.SubUIDs)
		in.GIDMap = innerMaps(m.GID, m.SubGIDs)
		in.Setgroups = true
	}
	blob, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating sync pipe: %w", err)
	}
	defer syncR.Close()
	defer syncW.Close()

	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"devbox"},
		Env:        append(ScrubEnv(spec.Env), envInner+"="+string(blob), envNFDs+"="+strconv.Itoa(len(spec.ExtraFiles))),
		Stdin:      spec.Stdin,
		Stdout:     spec.Stdout,
		Stderr:     spec.Stderr,
		Dir:        spec.Dir,
		ExtraFiles: append([]*os.File{syncR}, spec.ExtraFiles...),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER,
			Pdeathsig:  syscall.SIGKILL,
			Setpgid:    spec.Setpgid,
		},
	}
	if m.Single() {
		// Go writes a one-line map itself; P2 starts as uid 0 with its
		// capabilities and needs no newuidmap.
		cmd.Env = append(cmd.Env, envStage+"="+stageCaps)
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: m.UID, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: m.GID, Size: 1}}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	} else if exe, err := os.Open("/proc/self/exe"); err == nil && shWaiter() {
		// The outer helper only has to wait for its maps and then exec
		// devbox as uid 0 of the outer namespace. A POSIX shell does that
		// in a fraction of a Go program's start-up time; devbox's own
		// binary arrives as an open file, so an upgrade on disk meanwhile
		// does not matter.
		defer exe.Close()
		exeFD := 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, exe)
		cmd.Path = "/bin/sh"
		cmd.Args = []string{"sh", "-c", "read -r _ <&3 || exit 125; exec /proc/self/fd/" + strconv.Itoa(exeFD), "devbox"}
		cmd.Env = append(cmd.Env, envStage+"="+stageCaps, envExeFD+"="+strconv.Itoa(exeFD))
	} else {
		cmd.Env = append(cmd.Env, envStage+"="+stageOuter)
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
	// Pdeathsig follows the thread that forked, so keep it from being
	// reused by another goroutine while forking.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, diagnoseStart(err)
	}
	syncR.Close()
	if !m.Single() {
		// The two helpers are independent: run them at the same time.
		gidErr := make(chan error, 1)
		go func() { gidErr <- writeMap("newgidmap", cmd.Process.Pid, outerArgs(m.GID, m.SubGIDs)) }()
		err := writeMap("newuidmap", cmd.Process.Pid, outerArgs(m.UID, m.SubUIDs))
		if gerr := <-gidErr; err == nil {
			err = gerr
		}
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, err
		}
	}
	if _, err := syncW.Write([]byte{'\n'}); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("starting namespace helper: %w", err)
	}
	return &Process{cmd: cmd}, nil
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

// Main runs the intermediate stages. It is called by main before anything
// else when CurrentStage is internal, and never returns.
func Main() {
	switch CurrentStage() {
	case stageOuter:
		outerMain()
	case stageCaps:
		os.Exit(capsMain())
	}
	os.Exit(125)
}

func outerMain() {
	// Wait until P1 has written our maps; EOF means it gave up.
	var b [1]byte
	if n, _ := unix.Read(3, b[:]); n != 1 {
		os.Exit(125)
	}
	env := append(ScrubEnvKey(os.Environ(), envStage), envStage+"="+stageCaps)
	// uid 0 in the outer namespace now: exec again to gain capabilities.
	err := unix.Exec("/proc/self/exe", os.Args, env)
	fmt.Fprintf(os.Stderr, "devbox: re-executing in user namespace: %v\n", err)
	os.Exit(125)
}

// ScrubEnvKey returns env without key.
func ScrubEnvKey(env []string, key string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// shWaiter reports whether /bin/sh can serve as the outer helper.
func shWaiter() bool {
	fi, err := os.Stat("/bin/sh")
	return err == nil && fi.Mode()&0o111 != 0 && os.Getenv("DEVBOX_NO_SH_HELPER") == ""
}

func capsMain() int {
	if fd, err := strconv.Atoi(os.Getenv(envExeFD)); err == nil && fd > 3 {
		unix.Close(fd) // our own executable, passed by the shell helper
	}
	var in innerSpec
	if err := json.Unmarshal([]byte(os.Getenv(envInner)), &in); err != nil {
		fmt.Fprintf(os.Stderr, "devbox: reading namespace spec: %v\n", err)
		return 125
	}
	unix.Close(3) // the sync pipe
	if in.ParentPID > 0 {
		// The kernel cleared the parent-death signal when the exec into
		// this stage gave P2 its capabilities (commit_creds drops it when
		// capabilities grow): arm it again, so that a killed CLI takes
		// the box with it, and leave if the CLI is already gone.
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
		if os.Getppid() != in.ParentPID {
			return 125
		}
	}
	nfds, _ := strconv.Atoi(os.Getenv(envNFDs))
	extra := make([]*os.File, nfds)
	for i := range extra {
		extra[i] = os.NewFile(uintptr(4+i), "extra")
	}
	env := ScrubEnvKey(ScrubEnvKey(ScrubEnvKey(os.Environ(), envInner), envStage), envExeFD)
	env = append(env, envStage+"="+in.Stage)
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       append([]string{"devbox-" + in.Stage}, in.Args...),
		Env:        env,
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 unix.CLONE_NEWUSER | in.Flags,
			UidMappings:                in.UIDMap,
			GidMappings:                in.GIDMap,
			GidMappingsEnableSetgroups: in.Setgroups,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !in.Setgroups},
			Pdeathsig:                  syscall.SIGKILL,
		},
	}
	// Forward every catchable signal to the target.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	runtime.LockOSThread()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		fmt.Fprintf(os.Stderr, "devbox: creating namespaces: %v\n", err)
		return 125
	}
	for _, f := range extra {
		f.Close()
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGCHLD || s == syscall.SIGURG || s == syscall.SIGPIPE {
				continue
			}
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 125
}
