package holder

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"golang.org/x/sys/unix"
)

// MaybeSpare is called first by the box init: in a spare (SpareEnv set) it
// runs warm (newNet: in a network namespace of its own; stageDir: a
// directory for its staged mounts, or ""), waits for a run,
// calls taken, and returns once the process is that run's init, with the
// run's descriptors and arguments; it exits when the holder tells it to
// or is gone. Elsewhere it does nothing.
func MaybeSpare(warm func(newNet bool, stageDir string), taken func()) {
	v := os.Getenv(SpareEnv)
	if v == "" {
		return
	}
	// Our own user, before warm makes the spare root of the namespace:
	// the only one it serves.
	uid := os.Getuid()
	_ = os.Unsetenv(SpareEnv)
	listen, err1 := unix.FcntlInt(spareListenFD, unix.F_DUPFD_CLOEXEC, highFD)
	ctl, err2 := unix.FcntlInt(spareCtlFD, unix.F_DUPFD_CLOEXEC, highFD)
	if err1 != nil || err2 != nil {
		os.Exit(1)
	}
	unix.Close(spareListenFD)
	unix.Close(spareCtlFD)
	// A request's descriptors go to 0…maxFDs-1: nothing of the spare's
	// own may sit there. Held by placeholders while warm runs, so that
	// what it opens (the runtime's poller among them) lands above.
	var held []int
	for fd := 3; fd < maxFDs; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			trace.Mark("holder: spare: fd " + strconv.Itoa(fd) + " is taken: " + l)
			os.Exit(1)
		}
		p, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil || p != fd {
			os.Exit(1)
		}
		held = append(held, p)
	}
	mode, stage, _ := strings.Cut(v, ",")
	warm(mode == "net", stage)
	for _, fd := range held {
		unix.Close(fd)
	}
	buf := make([]byte, 1<<20)
	n, err := unix.Read(ctl, buf)
	if err != nil || n <= 0 {
		os.Exit(1)
	}
	pidStr, fp, ok := bytes.Cut(buf[:n], []byte{0})
	if !ok {
		os.Exit(1)
	}
	fp = bytes.Clone(fp)
	pidStr = bytes.Clone(pidStr)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	for {
		pfd := []unix.PollFd{{Fd: int32(listen), Events: unix.POLLIN}, {Fd: int32(ctl), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			os.Exit(1)
		}
		if pfd[1].Revents != 0 {
			os.Exit(0) // told to quit, or the holder is gone
		}
		c, _, err := unix.Accept4(listen, unix.SOCK_CLOEXEC)
		if err != nil {
			continue
		}
		conn, err := unix.FcntlInt(uintptr(c), unix.F_DUPFD_CLOEXEC, highFD)
		unix.Close(c)
		if err != nil {
			continue
		}
		// A client that connects and sends nothing does not keep the
		// spare: the request comes at once or not at all.
		_ = unix.SetsockoptTimeval(conn, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
		args, fds, ok := request(conn, buf, oob, fp, uid)
		if ok {
			ok = unix.SetsockoptTimeval(conn, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{}) == nil
		}
		if !ok {
			_ = unix.Sendto(conn, []byte("no"), unix.MSG_NOSIGNAL, nil)
			for _, fd := range fds {
				unix.Close(fd)
			}
			unix.Close(conn)
			continue
		}
		// The holder first: it must know whose connection this is before
		// devbox can rely on it.
		if unix.Sendmsg(ctl, []byte("taken"), unix.UnixRights(conn), nil, 0) != nil {
			os.Exit(1)
		}
		if unix.Sendto(conn, []byte("ok "+string(pidStr)), unix.MSG_NOSIGNAL, nil) != nil {
			os.Exit(1)
		}
		unix.Close(listen)
		unix.Close(ctl)
		taken()
		if !place(fds) {
			os.Exit(125)
		}
		os.Args = args
		trace.Mark("holder: spare taken")
		// devbox gone (killed) takes the box with it, as the parent-death
		// signal of a cloned init would.
		go func() {
			var b [16]byte
			for {
				n, err := unix.Read(conn, b[:])
				if err == unix.EINTR || (err == nil && n > 0) {
					continue
				}
				os.Exit(137)
			}
		}()
		return
	}
}

// maxFDs bounds the descriptors of a request (stdio and the recipe's pipes).
const maxFDs = 16

// request reads and checks one request: same user, magic, fingerprint.
func request(conn int, buf, oob, fp []byte, uid int) (args []string, fds []int, ok bool) {
	if cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED); err != nil || int(cred.Uid) != uid {
		return nil, nil, false
	}
	n, oobn, flags, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, nil, false
	}
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for i := range msgs {
				if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					fds = append(fds, f...)
				}
			}
		}
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || len(fds) < 4 || len(fds) > maxFDs {
		return nil, fds, false
	}
	parts := bytes.Split(buf[:n], []byte{0})
	if len(parts) < 4 || string(parts[0]) != warm.Magic || !bytes.Equal(parts[1], fp) {
		return nil, fds, false
	}
	for _, p := range parts[2 : len(parts)-1] {
		args = append(args, string(p))
	}
	return args, fds, true
}

// place puts fds at 0, 1, 2, … (without close-on-exec: the init's own
// start marks everything above 2), as a clone would have had them.
func place(fds []int) bool {
	high := make([]int, len(fds))
	for i, fd := range fds {
		h, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, highFD)
		if err != nil {
			return false
		}
		high[i] = h
		unix.Close(fd)
	}
	for i, fd := range high {
		if unix.Dup3(fd, i, 0) != nil {
			return false
		}
		unix.Close(fd)
	}
	return true
}
