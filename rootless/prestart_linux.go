package rootless

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/devbox-dev/devbox/internal/prestart"
	"github.com/devbox-dev/devbox/internal/trace"
	"golang.org/x/sys/unix"
)

// adopt takes over spec.Early when it is exactly the start cmd describes
// (startEnv is the start pipe's variable, uidCmd and gidCmd say how the
// maps are written: mapCommands) and its maps were written. Otherwise it
// discards the early start and returns nil: the caller clones anew.
//
// A start into a cgroup (the box's, cmd's UseCgroupFD) moves the early
// init there before its start byte: it has run nothing of the box yet, so
// everything of the box runs in the box's cgroup, as after a clone into it.
// The move needs write access to the cgroup.procs of the two cgroups'
// common ancestor (a CLI under the user's systemd manager has it, one in
// an ssh session's scope does not): refused, the start is discarded.
func adopt(spec Spec, cmd *exec.Cmd, startEnv string, uidCmd, gidCmd []string) *Process {
	e := spec.Early
	if !e.Usable() {
		return nil
	}
	r := e.Recipe
	n := len(r.Kinds)
	sys := cmd.SysProcAttr
	same := n == len(cmd.ExtraFiles)+1 && cmd.Path == r.Exe && slices.Equal(cmd.Args, e.Args) &&
		slices.Equal(append(slices.Clone(cmd.Env), startEnv), r.Env) &&
		sys.Cloneflags == r.Flags|unix.CLONE_VM|unix.CLONE_VFORK && sys.Setpgid == r.Setpgid &&
		!sys.Setsid && sys.Pdeathsig == syscall.SIGKILL && cmd.Dir == "" && stdio(cmd) &&
		len(uidCmd) > 0 && slices.Equal(r.UIDMap, uidCmd) && slices.Equal(r.GIDMap, gidCmd)
	for i := 0; same && i < n-1; i++ {
		same = int(cmd.ExtraFiles[i].Fd()) == e.Target[i]
	}
	if !same {
		e.Discard()
		trace.Mark("rootless: early start discarded: another start")
		return nil
	}
	if !e.MapsWritten() {
		e.Discard()
		trace.Mark("rootless: early start discarded: newuidmap or newgidmap failed")
		return nil
	}
	if sys.UseCgroupFD {
		if err := joinCgroup(sys.CgroupFD, e.Pid); err != nil {
			e.Discard()
			trace.Mark("rootless: early start discarded: cannot move it into the box's cgroup: " + err.Error())
			return nil
		}
	}
	proc, err := os.FindProcess(e.Pid)
	if err != nil {
		e.Discard()
		return nil
	}
	e.Adopted()
	var held *prestart.Launch
	if e.Held() {
		held = e
	}
	alive := os.NewFile(uintptr(e.Parent[n-1]), "start")
	syscall.Close(e.Target[n-1])
	if _, err := alive.Write([]byte{'\n'}); err != nil {
		// The init is gone: its exit status tells the caller.
		alive.Close()
		return &Process{proc: proc, held: held}
	}
	trace.Mark("rootless: early start adopted")
	if spec.Recipe != nil {
		r := e.Recipe
		spec.Recipe.Start = &r
	}
	return &Process{proc: proc, alive: alive, held: held}
}

// joinCgroup moves process pid (all its threads) into the cgroup whose
// directory dirfd is open.
func joinCgroup(dirfd, pid int) error {
	fd, err := unix.Openat(dirfd, "cgroup.procs", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte(strconv.Itoa(pid)))
	return err
}

// saveRecipe leaves the recipe of a start that package initialisation can
// repeat: one with the caller's stdio, dying with the caller. The box's
// cgroup is not part of it (adopt moves an early init into it).
func saveRecipe(spec Spec, cmd *exec.Cmd, uidCmd, gidCmd []string) {
	rt := os.Getenv("XDG_RUNTIME_DIR")
	sys := cmd.SysProcAttr
	if rt == "" || os.Getenv("DEVBOX_PRESTART") == "0" || len(uidCmd) == 0 || spec.Detach || cmd.Dir != "" || !stdio(cmd) ||
		len(spec.Recipe.Kinds) != len(spec.ExtraFiles) || len(spec.Recipe.Prefix) == 0 || spec.Recipe.ID == "" {
		return
	}
	r := prestart.Recipe{
		Prefix:  spec.Recipe.Prefix,
		TTY:     prestart.TTYState(),
		Exe:     cmd.Path,
		Env:     cmd.Env,
		Flags:   sys.Cloneflags &^ (unix.CLONE_VM | unix.CLONE_VFORK),
		Setpgid: sys.Setpgid,
		Kinds:   append(slices.Clone(spec.Recipe.Kinds), prestart.PipeToTarget),
		UIDMap:  uidCmd,
		GIDMap:  gidCmd,
		Join:    spec.Recipe.Join,
	}
	for _, a := range cmd.Args {
		r.Args = append(r.Args, strings.ReplaceAll(a, spec.Recipe.ID, prestart.IDToken))
	}
	// A start with the network handshake socket is only repeated by a
	// replay (which starts the helper too): no early-start recipe.
	if !slices.Contains(r.Kinds, prestart.SocketToTarget) {
		if err := prestart.Save(rt, r); err != nil {
			trace.Mark("rootless: recipe not saved: " + err.Error())
			return
		}
	}
	spec.Recipe.Start = &r
}

// stdio reports whether cmd runs on the caller's own descriptors 0, 1, 2.
func stdio(cmd *exec.Cmd) bool {
	return cmd.Stdin == os.Stdin && cmd.Stdout == os.Stdout && cmd.Stderr == os.Stderr
}

// mapCommand is the helper's path and its arguments after the pid.
func mapCommand(tool string, args []string) []string {
	path, err := exec.LookPath(tool)
	if err != nil {
		return nil
	}
	return append([]string{path}, args...)
}
