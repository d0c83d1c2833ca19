package run

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
)

// setupCgroup creates the box's cgroup (before anything of the box runs)
// and returns it with its directory opened for CLONE_INTO_CGROUP; both are
// nil when the host offers no cgroup and no limit was asked for.
func setupCgroup(ctx context.Context, h cgroup.Host, id string, l cgroup.Limits) (*cgroup.Box, *os.File, error) {
	h.StartKeeper = cmdutil.StartKeeper
	b, err := cgroup.Setup(ctx, h, id, l)
	if err != nil || b == nil {
		return nil, nil, err
	}
	f, err := b.File()
	if err != nil {
		_ = b.Remove()
		return nil, nil, err
	}
	return b, f, nil
}

// finishCgroup runs when the box has stopped: it reports an OOM kill
// (exit code 137 then), removes the cgroup and its record, and returns the
// exit code.
func finishCgroup(errOut io.Writer, b *cgroup.Box, f *os.File, dir string, l cgroup.Limits, code int) int {
	if b == nil {
		return code
	}
	f.Close()
	if n := b.OOMKills(); n > 0 {
		what := "its memory limit"
		if l.Memory != 0 {
			what += " (--memory " + cgroup.FormatSize(l.Memory) + ")"
		}
		procs := "a process"
		if n > 1 {
			procs = fmt.Sprintf("%d processes", n)
		}
		fmt.Fprintf(errOut, "devbox: the box hit %s: the kernel killed %s in it for running out of memory (hint: allow more with --memory)\n", what, procs)
		code = cmdutil.ExitOOM
	}
	cgroup.RemoveRecord(dir)
	if err := b.Remove(); err != nil {
		fmt.Fprintf(errOut, "devbox: warning: %v\n", strings.TrimPrefix(err.Error(), "devbox: "))
	}
	return code
}
