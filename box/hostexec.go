package box

import (
	"errors"
	"fmt"
	"github.com/devbox-dev/devbox/internal/self"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/devbox-dev/devbox/export"
	"github.com/devbox-dev/devbox/hostexec"
	"github.com/devbox-dev/devbox/rootless"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"golang.org/x/sys/unix"
)

// hostExecSocket creates the listening socket of dev box r's devbox-host
// helper in its runtime directory and says what the box gets: the socket,
// the program bound in as devbox-host, and whether it is xdg-open too.
func (m *Manager) hostExecSocket(r *rbox.Record, runDir string, lowers []string) (*rbox.HostExec, *os.File, error) {
	prog := InitExe()
	if prog == "" || !filepath.IsAbs(prog) || filepath.Dir(filepath.Dir(prog)) == "/proc/self/fd" {
		// No embedded program on disk: devbox itself is devbox-host too.
		exe, err := self.Path()
		if err != nil {
			return nil, nil, fmt.Errorf("finding devbox-host's program: %w", err)
		}
		prog = exe
	}
	path := filepath.Join(runDir, hostexec.SocketName)
	_ = os.Remove(path) // a stale socket of a box that died
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, nil, fmt.Errorf("creating the devbox-host socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	l.Close()
	if err != nil {
		return nil, nil, err
	}
	layers := append([]string{filepath.Join(m.bs.BoxDir(r.ID), "upper")}, lowers...)
	return &rbox.HostExec{Socket: path, Program: prog, XdgOpen: xdgOpenFree(layers)}, f, nil
}

// xdgOpenFree reports whether the box leaves /usr/local/bin/xdg-open to
// devbox's shim: nothing there, or the empty file an earlier start made
// as the shim's mount point. An xdg-open the image or the user put there
// is their preference and stays.
// On an image whose layers devbox cannot read (a root directory of mode
// 0700), no shim.
func xdgOpenFree(layers []string) bool {
	fs, err := export.OpenRootfs(layers)
	if err != nil {
		return false
	}
	defer fs.Close()
	f, err := fs.Open(hostexec.XdgOpenPath)
	if err != nil {
		// Nothing there; a layer devbox cannot read on the host (only the
		// box's ids may) might hide one: no shim then.
		return errors.Is(err, unix.ENOENT)
	}
	defer f.Close()
	fi, err := f.Stat()
	return err == nil && fi.Size() == 0
}

// startHostExec starts dev box r's devbox-host helper (package hostexec)
// on the listening socket: a process of the host's, in a session of its
// own, that exits with the box's init (pid). A helper that cannot start
// costs only devbox-host, so it is a warning.
func (m *Manager) startHostExec(r *rbox.Record, pid int, sock *os.File, runDir string) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		m.warn("box %s: no devbox-host (%v)", r.Name, err)
		return
	}
	pf := os.NewFile(uintptr(pidfd), "pidfd")
	defer pf.Close()
	logf, err := os.OpenFile(filepath.Join(runDir, "host.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		m.warn("box %s: no devbox-host (%v)", r.Name, err)
		return
	}
	defer logf.Close()
	c := rootless.HostStage(InitExe(), hostexec.Stage, strconv.Itoa(pid))
	c.Stdout, c.Stderr = logf, logf
	c.ExtraFiles = []*os.File{sock, pf}
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if home := userHome(); home != "" {
		c.Dir = home
	}
	if err := c.Start(); err != nil {
		m.warn("box %s: no devbox-host (%v)", r.Name, err)
		return
	}
	_ = c.Process.Release()
}
