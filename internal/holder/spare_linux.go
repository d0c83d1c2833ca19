package holder

import (
	"os"
	"strconv"

	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
	"golang.org/x/sys/unix"
)

// spareArg is a spare's argument: "devbox-init spare". Its mode comes on
// its control socket, not in its environment, which a box that may trace
// its init reads in /proc/1/environ: a spare's is a cold start's init's
// (TestWarmStartIsColdStart).
const spareArg = "spare"

const (
	ctlFD = 3 // a spare's control socket, as the holder passes it
	// highFD is where the spare keeps its own descriptors: above a
	// request's (warm.MaxFDs) and below 64, the size of the descriptor table a
	// cold start's init has. A fork copies a table sized by the parent's
	// highest open descriptor, and exec keeps it: a spare's at 100 gave
	// every process of its box a table of 128 (FDSize in
	// /proc/self/status), unlike a cold start's box
	// (TestWarmStartIsColdStart).
	highFD = 32
)

// MaybeSpare is called first by the box init: in a spare (started as
// "devbox-init spare") it reads its mode on its control socket, runs warm
// (newNet: in a network namespace of its own), waits for a run, calls taken, and returns
// once the process is that run's init, with the run's descriptors and
// arguments; it exits when the holder lets it go or is gone. Elsewhere it
// does nothing.
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
	// A request's descriptors go to 0…MaxFDs-1: nothing of the spare's
	// own may sit there. Held by placeholders while warm runs, so that
	// what it opens (the runtime's poller among them) lands above.
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
	// devbox gone (killed) takes the box with it, as the parent-death
	// signal of a cloned init would.
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

// place puts fds but the last at 0, 1, 2, … (without close-on-exec: the
// init's own start marks everything above 2), as a clone would have had
// them, and returns the last (the connection) at highFD or above.
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
