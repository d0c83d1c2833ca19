package holder

import (
	"os"
	"strconv"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"golang.org/x/sys/unix"
)

// spareArg is a spare's argument: "devbox-init spare". Its mode comes on
// its control socket: its environment, which a box may read in
// /proc/1/environ, is a cold start's init's.
const spareArg = "spare"

const (
	ctlFD = 3 // a spare's control socket, as the holder passes it
	// highFD is where the spare keeps its own descriptors: above a
	// request's (warm.MaxFDs) and below 64, a cold start's table size,
	// which a fork and exec keep (FDSize in /proc/self/status).
	highFD = 32
)

// MaybeSpare is called first by the box init: in a spare it reads its
// mode, runs warmUp, waits for a run, calls taken, and returns once the
// process is that run's init, with its descriptors and arguments; it exits
// when the holder lets it go or is gone. Elsewhere it does nothing.
func MaybeSpare(warmUp func(newNet bool), taken func()) {
	if len(os.Args) != 2 || os.Args[1] != spareArg {
		return
	}
	ctl, err := unix.FcntlInt(ctlFD, unix.F_DUPFD_CLOEXEC, highFD)
	if err != nil {
		os.Exit(1)
	}
	unix.Close(ctlFD)
	mode, _, err := warm.Recv(ctl)
	if err != nil || len(mode) != 1 {
		os.Exit(1)
	}
	// A request's descriptors go to 0…MaxFDs-1: placeholders hold them
	// while warmUp opens its own (the runtime's poller among them).
	for fd := 3; fd < warm.MaxFDs; fd++ {
		if p, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil || p != fd {
			trace.Mark("holder: spare: fd " + strconv.Itoa(fd) + " is taken")
			os.Exit(1)
		}
	}
	warmUp(mode[0] == "n")
	for fd := 3; fd < warm.MaxFDs; fd++ {
		unix.Close(fd)
	}
	args, fds, err := warm.Recv(ctl)
	if err != nil || len(fds) < 5 {
		os.Exit(0) // let go, or the holder is gone
	}
	unix.Close(ctl)
	taken()
	conn, ok := place(fds)
	if !ok {
		os.Exit(125)
	}
	os.Args = args
	trace.Mark("holder: spare taken")
	// devbox gone takes the box with it, as a cloned init's parent-death
	// signal would.
	go func() {
		var b [16]byte
		for {
			n, err := unix.Read(conn, b[:])
			if err != unix.EINTR && (err != nil || n == 0) {
				os.Exit(137)
			}
		}
	}()
}

// place puts fds but the last at 0, 1, 2, … as a clone would have them,
// and returns the last (the connection) at highFD or above.
func place(fds []int) (int, bool) {
	high := make([]int, len(fds))
	for i, fd := range fds {
		h, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, highFD)
		if err != nil {
			return -1, false
		}
		high[i] = h
		unix.Close(fd)
	}
	last := len(high) - 1
	for i, fd := range high[:last] {
		if unix.Dup3(fd, i, 0) != nil {
			return -1, false
		}
		unix.Close(fd)
	}
	return high[last], true
}
