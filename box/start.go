package box

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/runtime"
	"github.com/devbox-dev/devbox/runtime/agent"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"golang.org/x/sys/unix"
)

// Start starts box r unless its agent already answers, and returns once
// it answers. Concurrent callers serialise on the box's lock; the second
// finds it running. r is updated to the record as it was started.
func (m *Manager) Start(r *rbox.Record) error {
	if m.bs.Running(r.ID) {
		return nil
	}
	unlock, err := m.bs.Lock("box-" + r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if m.bs.Running(r.ID) {
		return nil
	}
	if run, ok := m.LiveRun(r.ID); ok {
		return fmt.Errorf("box %s is a devbox run in progress (pid %d); it can be entered once its command ended (hint: devbox stop %s ends it now)", r.Name, run.PID, r.Name)
	}
	// The record as it is now: a snapshot, rollback or clone (under this
	// lock) may have changed its layers since the caller read it.
	cur, err := m.bs.Get(r.ID)
	if err != nil {
		return err
	}
	*r = *cur
	return m.start(r)
}

func (m *Manager) start(r *rbox.Record) error {
	if r.Problem != nil {
		return r.Problem // never started: records come through Get, this is a guard
	}
	if err := rbox.CheckSources(r); err != nil {
		return err
	}
	if err := m.bs.Complete(r, m.LayerOps()); err != nil {
		return err // an interrupted snapshot, rollback or clone
	}
	var lowers []string
	for _, c := range r.Lowers {
		// Check made sure c is a layer id; the layer is a directory of
		// this store's layers/, never a symlink out of it.
		d := filepath.Join(m.st.LayersDir(), c)
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("box %s: its image %s is no longer unpacked (hint: devbox pull %s)", r.Name, r.Image, r.Image)
		}
		lowers = append(lowers, d)
	}
	runDir := m.bs.RunDir(r.ID)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", runDir, err)
	}
	h := HostInfo(m.ids)
	var hostSock *os.File
	if r.Home == "" { // a dev box: devbox-host's channel
		var err error
		if h.HostExec, hostSock, err = m.hostExecSocket(r, runDir, lowers); err != nil {
			return err
		}
		defer hostSock.Close()
	}
	spec, err := rbox.Spec(r, lowers, m.bs.BoxDir(r.ID), h)
	if err != nil {
		return err
	}
	if m.ids.Single() {
		spec.Account = nil // root inside is you: nothing to add
	}
	nw, err := m.boxNetwork(r)
	if err != nil {
		return err
	}
	// The handshake descriptor follows the agent's listener (fd 3).
	nw.Apply(spec, spec.ResolvConf, 4)
	specPath := filepath.Join(m.bs.BoxDir(r.ID), "spec.json")
	if err := runtime.WriteSpec(specPath, spec); err != nil {
		return fmt.Errorf("writing box spec: %w", err)
	}
	sock := m.bs.SocketPath(r.ID)
	_ = os.Remove(sock) // a stale socket of a box that died
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("creating the box socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	l.Close()
	if err != nil {
		return err
	}
	defer lf.Close()
	logPath := filepath.Join(runDir, "box.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// The box's cgroup exists before any of its processes (they are
	// cloned into it); a cgroup left by the box's previous run goes first.
	m.removeCgroup(r)
	cg, cgFile, err := setupCgroup(m.ctx, CgroupHost(), r.ID, r.Limits)
	if err != nil {
		return err
	}
	if cgFile != nil {
		defer cgFile.Close()
	}
	if cg != nil && nw != nil {
		nw.Choice.Cgroup = cg.Path
	}
	// The agent's listener is fd 3, the network handshake fd 4
	// (spec.NetFD).
	p, err := launch(launchOptions{Dir: m.bs.BoxDir(r.ID), SpecPath: specPath, Log: logf, Files: []*os.File{lf},
		Net: nw, RunDir: runDir, IDs: m.ids, Cgroup: cgFile, Sealed: spec.Security.MayTrace()})
	if err == nil && cg != nil {
		if werr := cgroup.WriteRecord(m.bs.BoxDir(r.ID), cg.Path); werr != nil {
			m.warn("%v", werr)
		}
	} else if cg != nil {
		_ = cg.Remove()
	}
	if err != nil {
		return err
	}
	if hostSock != nil {
		m.startHostExec(r, p.Pid(), hostSock, runDir)
	}
	exited := make(chan int, 1)
	go func() {
		code, _ := p.Wait()
		exited <- code
	}()
	ready := make(chan error, 1)
	go func() {
		_, err := agent.Call(sock, agent.Request{Type: agent.TypeStatus}, 60*time.Second)
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("starting box %s: %w%s", r.Name, err, logTail(logPath))
		}
	case code := <-exited:
		if err := nw.Failed(); err != nil {
			return fmt.Errorf("starting box %s: %w", r.Name, err)
		}
		return fmt.Errorf("starting box %s failed (exit %d)%s", r.Name, code, logTail(logPath))
	}
	// A box that did not wait for its helper runs without a network when
	// the helper failed: said, not failed (the box is up).
	if msg := nw.StartWarning(time.Second, "devbox stop "+r.Name+", then start it again"); msg != "" {
		m.warn("%s", msg)
	}
	if err := m.bs.RecordInit(r.ID, p.Pid()); err != nil {
		m.warn("%v (devbox stop can only ask the box to stop)", err)
	}
	m.refreshLinker(r, rbox.LinkerDirs(r, h), logf)
	m.runStartHooks(r, logf)
	return nil
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return ": " + strings.Join(lines, "; ")
}

// Stop asks box r's agent to stop and waits until it is down: its
// sessions ended (the agent answers until then) and its init exited.
// After timeout the init is killed (only once verified as the box's);
// reason is what its sessions are told.
func (m *Manager) Stop(r *rbox.Record, timeout time.Duration, reason string) error {
	sock := m.bs.SocketPath(r.ID)
	_, err := agent.Call(sock, agent.Request{Type: agent.TypeStop, Reason: reason}, 5*time.Second)
	if err != nil && agent.IsNotRunning(err) {
		m.waitInit(r, 2*time.Second) // a box already on its way out
		m.removeCgroup(r)
		return nil
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !m.bs.Running(r.ID) {
			m.waitInit(r, time.Until(deadline))
			m.removeCgroup(r)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The agent did not finish: kill the init, which ends the box's PID
	// namespace and every process in it.
	// Only a process verified as this box's init is killed (init.pid
	// names it with its start time and namespaces).
	kerr := m.bs.SignalInit(r.ID, unix.SIGKILL)
	if kerr == nil {
		for i := 0; i < 100 && m.bs.Running(r.ID); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if m.bs.Running(r.ID) {
		if kerr != nil {
			return fmt.Errorf("box %s did not stop: %w", r.Name, kerr)
		}
		return errors.New("box " + r.Name + " did not stop")
	}
	m.removeCgroup(r)
	return nil
}

// waitInit waits up to timeout for box r's init to exit once its agent
// stopped answering: the box is down when devbox stop returns.
func (m *Manager) waitInit(r *rbox.Record, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for m.bs.InitAlive(r.ID) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// removeCgroup removes the cgroup a stopped box left behind (a box that
// stopped by itself after its grace period cannot remove its own; nothing
// else does below devbox.scope, which outlives its boxes). The last
// processes of a box that just stopped may take a moment to leave it.
func (m *Manager) removeCgroup(r *rbox.Record) {
	dir := m.bs.BoxDir(r.ID)
	p, err := cgroup.ReadRecord(dir)
	if err != nil {
		return
	}
	b, err := cgroup.Load(cgroup.DetectHost().Root, p)
	if err != nil {
		return
	}
	for i := 0; i < 50 && b.Populated(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if b.Populated() {
		return
	}
	_ = b.Remove()
	cgroup.RemoveRecord(dir)
}
