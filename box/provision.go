package box

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/boxstdio"
	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/runtime/agent"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/session"
)

// provisionLog is the package managers' output of a box's provisioning,
// in its box directory.
const provisionLog = "provision.log"

// wantsProvision reports whether box r is provisioned before its session:
// a dev box (the user's own home) with subordinate ids that was not
// provisioned yet, unless the box or the configuration says not to; or
// any dev box when again (--reprovision) asks, which is an error for a
// box that cannot be provisioned.
func (m *Manager) wantsProvision(r *rbox.Record, again bool) (bool, error) {
	switch {
	case r.Home != "" && !IsOwnHome(r.Home):
		if again {
			return false, inputErrorf("--reprovision: box %s has a home of its own (a sandboxed box): only dev boxes are provisioned", r.Name)
		}
		return false, nil
	case m.ids.Single():
		if again {
			return false, fmt.Errorf("--reprovision: provisioning needs subordinate ids, you have none (hint: devbox doctor)")
		}
		return false, nil
	case again:
		return true, nil
	}
	var auto *bool
	if cfg, err := m.settings(); err == nil {
		auto = cfg.Provision.Auto
	}
	return session.NeedsProvision(r.SessionBox(), m.ids.Single(), auto), nil
}

// Provision runs first-start provisioning in running box r (under its
// provisioning lock, so that concurrent shells run it once) and saves
// the result in its record. Only a failure to reach the box is an error;
// again (--reprovision) runs it even when it ran before.
func (m *Manager) Provision(r *rbox.Record, again bool) (*rbox.Record, error) {
	unlock, err := m.bs.Lock("provision-" + r.ID)
	if err != nil {
		return r, err
	}
	defer unlock()
	cur, err := m.bs.Get(r.ID)
	if err != nil {
		return r, err
	}
	if !again && cur.Provision != nil {
		return cur, nil
	}
	cfg, err := m.settings()
	if err != nil {
		return r, err
	}
	logPath := filepath.Join(m.bs.BoxDir(r.ID), provisionLog)
	// Made anew: a link planted in the box's directory is not followed.
	logf, err := safefile.Create(logPath, os.O_APPEND, 0o600)
	if err != nil {
		return r, fmt.Errorf("provisioning box %s: %w", r.Name, err)
	}
	defer logf.Close()
	acct := HostAccount(m.ids)
	st, err := provision.Run(provision.Options{
		Box: r.Name, Lang: os.Getenv("LANG"), Shell: acct.Shell, Repos: cfg.Provision.Repos,
		Log: logf, Progress: m.progress, Runner: m.Runner(r, 0, 0),
		Hint: "devbox shell --reprovision " + r.Name,
	})
	if err != nil {
		return r, fmt.Errorf("provisioning box %s: %w (log: %s)", r.Name, err, logPath)
	}
	cur.Provision = st
	if err := m.bs.SaveProvision(cur); err != nil {
		return r, fmt.Errorf("provisioning box %s: %w", r.Name, err)
	}
	return cur, nil
}

// ErrInterrupted is a Runner's error when SIGINT or SIGTERM came while
// the command ran (the command got it too).
var ErrInterrupted = errors.New("interrupted")

// rootRunner runs provisioning commands as root of a running box through
// its agent; SIGINT and SIGTERM are passed on.
type rootRunner struct {
	m *Manager
	r *rbox.Record
	// uid and gid run the command as the box's user instead (assemble
	// hooks of a devcontainer.json).
	uid, gid int
}

// Runner runs commands in running box r through its agent, as uid and
// gid of the box (0, 0: its root), stdin on /dev/null; SIGINT and SIGTERM
// are passed on, and end the wait with ErrInterrupted.
func (m *Manager) Runner(r *rbox.Record, uid, gid int) provision.Runner {
	return rootRunner{m: m, r: r, uid: uid, gid: gid}
}

func (rr rootRunner) Run(args, env []string, stdout, stderr *os.File) (int, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	c, err := agent.Dial(rr.m.bs.SocketPath(rr.r.ID))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	files := []*os.File{null, stdout, stderr}
	if rr.r.Home != "" && !IsOwnHome(rr.r.Home) {
		// A sandbox (devbox build's box, whose hooks nobody was asked
		// about; a box file's box with a home of its own): it gets its
		// log as a pipe, not the file, which box root
		// could reopen through /proc/self/fd (internal/boxstdio).
		stdio, err := boxstdio.New(null, stdout, stderr, false)
		if err != nil {
			return 0, err
		}
		defer stdio.Drain(time.Second)
		defer stdio.Sent()
		files = stdio.Files
	}
	err = c.Send(agent.Request{Type: agent.TypeExec, Args: args, Env: env, Cwd: "/", UID: rr.uid, GID: rr.gid}, files...)
	if err != nil {
		return 0, err
	}
	var rep agent.Reply
	if _, err := c.Receive(&rep); err != nil {
		return 0, err
	}
	switch rep.Type {
	case agent.TypeStarted:
	case agent.TypeExit, agent.TypeError:
		return rep.Code, nil // not started (127: no such command)
	default:
		return 0, fmt.Errorf("box %s answered %q", rr.r.Name, rep.Type)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	exit := make(chan agent.Reply, 1)
	go func() {
		var r agent.Reply
		if _, err := c.Receive(&r); err != nil {
			r = agent.Reply{Type: agent.TypeExit, Code: 128 + int(syscall.SIGHUP)}
		}
		exit <- r
	}()
	for {
		select {
		case s := <-sigs:
			_ = c.Send(agent.Request{Type: agent.TypeSignal, Signal: int(s.(syscall.Signal))})
			return 0, ErrInterrupted
		case r := <-exit:
			return r.Code, nil
		}
	}
}

// refreshLinker adds dirs (the NVIDIA driver's bound libraries) to the
// linker cache of box r, just started: ldconfig as the box's root, its
// output in the box's log. A box without ldconfig (musl) does without.
func (m *Manager) refreshLinker(r *rbox.Record, dirs []string, log *os.File) {
	if len(dirs) == 0 || m.ids.Single() {
		return
	}
	args := append([]string{"/bin/sh", "-c", `command -v ldconfig >/dev/null 2>&1 || exit 0; exec ldconfig "$@"`, "sh"}, dirs...)
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if code, err := m.Runner(r, 0, 0).Run(args, env, log, log); err != nil || code != 0 {
		m.warn("box %s: ldconfig for the NVIDIA libraries failed (exit %d, %v; log: %s)", r.Name, code, err, log.Name())
	}
}

// runStartHooks runs box r's on_start hooks as its root, just started;
// their output goes to the box's log. A failing hook is a warning.
func (m *Manager) runStartHooks(r *rbox.Record, log *os.File) {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}
	for _, h := range r.OnStart {
		fmt.Fprintf(log, "\n### devbox: on_start hook: %s\n", h)
		if code, err := m.Runner(r, 0, 0).Run([]string{"/bin/sh", "-c", h}, env, log, log); err != nil || code != 0 {
			m.warn("box %s: on_start hook %q failed (exit %d, %v; log: %s)", r.Name, h, code, err, log.Name())
		}
	}
}
