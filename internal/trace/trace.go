// Package trace prints start-up milestones of devbox's processes when the
// environment variable DEVBOX_TRACE is set: one line per milestone on
// standard error, "devbox-trace SECONDS.MICROS PID WHAT", wall-clock time, so
// that lines of several processes (the CLI, the box init) can be merged and
// set against a timestamp taken before devbox started. bench/ and
// docs/benchmarks.md use it to show where the time of a start goes.
package trace

import (
	"os"
	"strconv"
	"time"
)

// Env is the variable that turns tracing on; the CLI passes it to the box
// init.
const Env = "DEVBOX_TRACE"

var on = os.Getenv(Env) != ""

// On reports whether tracing is on.
func On() bool { return on }

// Mark prints one milestone.
func Mark(what string) {
	if !on {
		return
	}
	now := time.Now()
	us := now.UnixMicro()
	b := make([]byte, 0, 64)
	b = append(b, "devbox-trace "...)
	b = strconv.AppendInt(b, us/1e6, 10)
	b = append(b, '.')
	frac := strconv.FormatInt(us%1e6+1e6, 10)[1:]
	b = append(b, frac...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, ' ')
	b = append(b, what...)
	b = append(b, '\n')
	_, _ = os.Stderr.Write(b)
}
