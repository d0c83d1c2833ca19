package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal of the box's own devpts instance: the master
// stays with the init, the slave becomes the command's controlling
// terminal.
type pty struct {
	master *os.File // pollable: reads can be interrupted by a deadline
	slave  *os.File
}

// openPTY opens a pty pair in the box's /dev/pts (the init has pivoted, so
// /dev/ptmx is the box's) and gives the slave to uid, as login does.
func openPTY(uid uint32) (*pty, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("allocating a terminal: %w", err)
	}
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("allocating a terminal: %w", err)
	}
	sfd := -1
	var ierr error
	cerr := rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil {
			return
		}
		// TIOCGPTPEER opens the slave without a path lookup (Linux 4.13).
		r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
		if e == 0 {
			sfd = int(r)
			return
		}
		n, err := unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
		if err != nil {
			ierr = err
			return
		}
		sfd, ierr = unix.Open("/dev/pts/"+strconv.FormatUint(uint64(n), 10), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	})
	if err := errors.Join(cerr, ierr); err != nil {
		master.Close()
		return nil, fmt.Errorf("allocating a terminal: %w", err)
	}
	if err := unix.Fchown(sfd, int(uid), -1); err != nil {
		unix.Close(sfd)
		master.Close()
		return nil, fmt.Errorf("allocating a terminal: %w", err)
	}
	return &pty{master: master, slave: os.NewFile(uintptr(sfd), "pty")}, nil
}

// resize copies the size of the init's stdin (the user's terminal) to the
// pty; the kernel then sends SIGWINCH to the box's foreground job.
func (p *pty) resize() {
	ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	if rc, err := p.master.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) })
	}
}

// pump starts copying stdin to the pty and the pty to stdout. The returned
// channel is closed when the output copy has ended.
func (p *pty) pump() chan struct{} {
	go func() { _, _ = io.Copy(p.master, os.Stdin) }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := p.master.Read(buf)
			if n > 0 {
				_, _ = os.Stdout.Write(buf[:n])
			}
			if err == nil {
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				p.flush(buf)
			}
			// EIO: every slave descriptor is closed and the output is read.
			return
		}
	}()
	return done
}

// drain ends the output copy once the command has exited. Other processes
// of the box may still hold the slave, so the init cannot wait for EIO: it
// interrupts the copy, which then reads what the pty holds and stops.
func (p *pty) drain(copied chan struct{}) {
	_ = p.master.SetReadDeadline(time.Now())
	<-copied
}

// flush reads what the pty holds without waiting: each read first pushes
// the data written to the slave through to the master side.
func (p *pty) flush(buf []byte) {
	_ = p.master.SetReadDeadline(time.Time{})
	rc, err := p.master.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), buf)
			if n > 0 {
				_, _ = os.Stdout.Write(buf[:n])
				continue
			}
			if err == unix.EINTR {
				continue
			}
			return true
		}
	})
}
