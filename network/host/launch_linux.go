package host

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/network"
)

// Helper is a started network helper, seen from the CLI.
type Helper struct {
	// InitEnd is the init's end of the handshake: pass it to the box
	// (rootless.Spec.ExtraFiles) and close it once the box started.
	InitEnd *os.File

	cmd    *exec.Cmd
	log    string
	done   chan struct{} // closed when the first status line (or EOF) arrived
	result Status
	gotOne bool
	down   chan struct{} // closed when "down" (or EOF) arrived
	exited chan struct{}
}

// Start starts the helper described by o. cmd runs the helper stage of
// this devbox binary in the host's namespaces (the caller builds it: it
// knows how stages are started); Start adds its descriptors, stdin and log.
// The helper gets a session of its own and no parent-death signal: it
// must outlive a killed CLI long enough to clean up after the box.
func Start(cmd *exec.Cmd, o Options) (*Helper, error) {
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
	defer helperEnd.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		initEnd.Close()
		return nil, err
	}
	defer statusW.Close()
	logPath := LogFile(o.RunDir)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		initEnd.Close()
		statusR.Close()
		return nil, err
	}
	defer logf.Close()
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{helperEnd, statusW} // FDConn, FDStatus
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		initEnd.Close()
		statusR.Close()
		return nil, fmt.Errorf("starting the network helper: %w", err)
	}
	h := &Helper{InitEnd: initEnd, cmd: cmd, log: logPath, done: make(chan struct{}), down: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(h.down)
		defer statusR.Close()
		r := bufio.NewReader(statusR)
		line, err := r.ReadBytes('\n')
		if err == nil && json.Unmarshal(line, &h.result) == nil {
			h.gotOne = true
		}
		close(h.done)
		for err == nil {
			var s Status
			if line, err = r.ReadBytes('\n'); err == nil && json.Unmarshal(line, &s) == nil && s.Down {
				return
			}
		}
	}()
	go func() {
		_ = cmd.Wait() // reap it whenever it ends
		close(h.exited)
	}()
	return h, nil
}

// CloseInitEnd closes the CLI's copy of the init's end (after the box
// started, or when it failed to).
func (h *Helper) CloseInitEnd() {
	if h.InitEnd != nil {
		h.InitEnd.Close()
		h.InitEnd = nil
	}
}

// Err returns why the helper failed to set up the box's network, or nil
// when it did not fail (or was not needed). It waits at most timeout for
// the helper's word.
func (h *Helper) Err(timeout time.Duration) error {
	if !h.wait(timeout) {
		return nil
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
	select {
	case <-h.down:
	case <-h.exited:
	case <-time.After(timeout):
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
}

// Pid is the helper's process id.
func (h *Helper) Pid() int { return h.cmd.Process.Pid }
