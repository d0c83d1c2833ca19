package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/network/host/status"
)

// Helper is a network helper, seen from the CLI.
type Helper struct {
	// InitEnd is the init's end of the handshake: pass it to the box
	// (rootless.Spec.ExtraFiles) and close it once the box started.
	InitEnd *os.File

	cmd     *exec.Cmd
	log     string
	launch  sync.Once
	started chan struct{} // closed once the process started, or failed to
	err     error         // why it did not start
	// The helper's descriptors, closed in the CLI once it started.
	helperEnd, statusW, logf *os.File
	statusR                  *os.File

	done   chan struct{} // closed when the first status line (or EOF) arrived
	result Status
	gotOne bool
	down   chan struct{} // closed when "down" (or EOF) arrived
	exited chan struct{}

	// What Watch needs, under mu: why the start failed and why the
	// helper ended early (nil: it did not, or not yet), and whom to tell.
	mu                sync.Mutex
	startErr, diedErr error
	watch             *status.Teller
	watchEarly, muted bool
}

// Start prepares the helper described by o and starts its process in the
// background (see Launch). cmd runs the helper stage in the host's
// namespaces (the caller builds it: it knows which program that is);
// Start adds its descriptors, stdin and log. The helper gets a session of
// its own and no parent-death signal: it must outlive a killed CLI long
// enough to clean up after the box.
func Start(cmd *exec.Cmd, o Options) (*Helper, error) {
	h, err := Prepare(cmd, o)
	if err != nil {
		return nil, err
	}
	h.Launch()
	return h, nil
}

// Prepare is Start without starting the process: InitEnd is ready for the
// box, and Launch (or any method that needs the process) starts it. The
// box init only needs its end of the socketpair, so the CLI starts the
// init first and the helper while the init starts.
func Prepare(cmd *exec.Cmd, o Options) (*Helper, error) {
	if err := os.MkdirAll(o.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.RunDir, err)
	}
	body, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	helperEnd, initEnd, err := network.NewPair()
	if err != nil {
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		initEnd.Close()
		helperEnd.Close()
		return nil, err
	}
	logPath := LogFile(o.RunDir)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		for _, f := range []*os.File{initEnd, helperEnd, statusR, statusW} {
			f.Close()
		}
		return nil, err
	}
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{helperEnd, statusW} // FDConn, FDStatus
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	return &Helper{InitEnd: initEnd, cmd: cmd, log: logPath, started: make(chan struct{}),
		helperEnd: helperEnd, statusW: statusW, logf: logf, statusR: statusR,
		done: make(chan struct{}), down: make(chan struct{}), exited: make(chan struct{})}, nil
}

// Launch starts the helper process in the background, once.
func (h *Helper) Launch() {
	h.launch.Do(func() { go h.start() })
}

func (h *Helper) start() {
	err := h.cmd.Start()
	h.helperEnd.Close()
	h.statusW.Close()
	h.logf.Close()
	if err != nil {
		h.err = fmt.Errorf("starting the network helper: %w", err)
		h.statusR.Close()
		close(h.started)
		close(h.done)
		close(h.down)
		close(h.exited)
		h.failed(&h.startErr, h.err)
		return
	}
	close(h.started)
	go func() {
		defer close(h.down)
		defer h.statusR.Close()
		var start error
		down := status.Read(h.statusR, func(l status.Line, ok bool) {
			h.result, h.gotOne = l, ok
			if start = status.StartError(l, ok); start != nil {
				h.failed(&h.startErr, start)
			}
			close(h.done) // after failed: StartFailure reads it
		})
		if !down && start == nil {
			// Died after its start: its exit status says how (it is
			// reaped below as soon as it is gone).
			why := status.ErrExited
			select {
			case <-h.exited:
				why = fmt.Errorf("%w (%s)", status.ErrExited, h.cmd.ProcessState)
			case <-time.After(time.Second):
			}
			h.failed(&h.diedErr, why)
		}
	}()
	go func() {
		_ = h.cmd.Wait() // reap it whenever it ends
		close(h.exited)
	}()
}

// InitStarted is called once the box init was started (or failed to): the
// helper process starts now, and the CLI drops its copy of the init's end.
func (h *Helper) InitStarted() {
	h.Launch()
	h.CloseInitEnd()
}

// CloseInitEnd closes the CLI's copy of the init's end (after the box
// started, or when it failed to).
func (h *Helper) CloseInitEnd() {
	if h.InitEnd != nil {
		h.InitEnd.Close()
		h.InitEnd = nil
	}
}

// Watch has warn called, once and from another goroutine, as soon as the
// box's network stops working while the box runs: the helper died after
// its start, or (early: the box did not wait for it, runtime.Spec.NetEarly)
// its start failed. A start that waited for the helper fails with its
// error (Err) instead. Calling it once is enough, before or after the
// failure; Mute ends it.
func (h *Helper) Watch(early bool, warn func(error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.muted {
		return
	}
	h.watch, h.watchEarly = status.NewTeller(warn), early
	h.notifyLocked()
}

// Mute ends the watch (the box is gone: what becomes of its network no
// longer matters) and returns the failure warn was called with, if it
// was: a warning being written is finished first.
func (h *Helper) Mute() error {
	h.mu.Lock()
	w := h.watch
	h.muted = true
	h.mu.Unlock()
	if w == nil {
		return nil
	}
	return w.Stop()
}

// Warned reports whether warn was called.
func (h *Helper) Warned() bool {
	h.mu.Lock()
	w := h.watch
	h.mu.Unlock()
	return w != nil && w.Told() != nil
}

// failed records a failure of the helper in *field and tells the watch.
func (h *Helper) failed(field *error, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	*field = err
	h.notifyLocked()
}

// notifyLocked tells the watch the failure it is for, if there is one.
func (h *Helper) notifyLocked() {
	if h.watch == nil {
		return
	}
	if h.startErr != nil && h.watchEarly {
		h.watch.Failed(h.startErr)
	} else if h.diedErr != nil {
		h.watch.Failed(h.diedErr)
	}
}

// StartFailure is why the helper's start failed, nil when it did not or
// its word did not come within timeout. Unlike Err's, its error has no
// hint.
func (h *Helper) StartFailure(timeout time.Duration) error {
	h.Launch()
	if !h.wait(timeout) {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.startErr
}

// LogPath is the helper's log (net.log in the box's runtime directory).
func (h *Helper) LogPath() string { return h.log }

// Err returns why the helper failed to set up the box's network, or nil
// when it did not fail (or was not needed). It waits at most timeout for
// the helper's word.
func (h *Helper) Err(timeout time.Duration) error {
	h.Launch()
	if !h.wait(timeout) {
		return nil
	}
	if h.err != nil {
		return h.err
	}
	if !h.gotOne {
		return fmt.Errorf("the network helper exited unexpectedly (hint: see %s)", h.log)
	}
	if h.result.Error != "" {
		return errors.New(h.result.Error)
	}
	return nil
}

// Ready waits until the helper published the box's ports (nil), failed
// (its error) or timeout passed.
func (h *Helper) Ready(timeout time.Duration) error {
	h.Launch()
	if !h.wait(timeout) {
		return fmt.Errorf("the network helper did not finish in %s (hint: see %s)", timeout, h.log)
	}
	return h.Err(0)
}

// wait reports whether the status arrived within timeout.
func (h *Helper) wait(timeout time.Duration) bool {
	select {
	case <-h.done:
		return true
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-h.done:
		return true
	case <-t.C:
		return false
	}
}

// Wait waits until the helper took the box's network down (it does once
// the box is gone: its ports are closed and pasta or slirp4netns ended),
// at most timeout; then it is killed. The helper's own exit follows.
func (h *Helper) Wait(timeout time.Duration) {
	h.Launch()
	select {
	case <-h.down:
	case <-h.exited:
	case <-time.After(timeout):
		<-h.started
		if h.cmd.Process != nil {
			_ = h.cmd.Process.Kill()
		}
		<-h.exited
	}
}

// Pid is the helper's process id (0 when it did not start).
func (h *Helper) Pid() int {
	h.Launch()
	<-h.started
	if h.cmd.Process == nil {
		return 0
	}
	return h.cmd.Process.Pid
}
