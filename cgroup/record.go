package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/devbox-dev/devbox/internal/safefile"
)

// RecordFile is the name of the file in a box's directory
// (containers/<id>/cgroup) that holds the group path of its cgroup while it
// runs: one line, relative to the unified hierarchy's mount point, as in
// the "0::" line of /proc/PID/cgroup.
const RecordFile = "cgroup"

// ErrNoRecord means the box has no cgroup record: it is not running, or it
// was started where no cgroup was available.
var ErrNoRecord = errors.New("no cgroup record")

// WriteRecord records group path p in the box directory dir, atomically.
func WriteRecord(dir, p string) error {
	tmp, err := os.CreateTemp(dir, ".cgroup-*")
	if err != nil {
		return fmt.Errorf("recording the box's cgroup: %w", err)
	}
	_, err = tmp.WriteString(p + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, RecordFile))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("recording the box's cgroup: %w", err)
	}
	return nil
}

// ReadRecord returns the group path recorded in box directory dir, or
// ErrNoRecord. The record is input (a dev box can write the store when it
// lies in the home): it must be a small regular file, reached without a
// link, naming the box's own cgroup, devbox-<id> after the directory's
// name — never another cgroup of the user's for stats, update or stop
// to read, limit or kill.
func ReadRecord(dir string) (string, error) {
	name := filepath.Join(dir, RecordFile)
	b, err := safefile.ReadFile(name, 4096)
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoRecord
	}
	if err != nil {
		return "", err
	}
	p := strings.TrimSpace(string(b))
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "..") || path.Base(p) != Prefix+filepath.Base(dir) {
		return "", fmt.Errorf("%s: invalid cgroup path %q", name, p)
	}
	return p, nil
}

// RemoveRecord removes the record of box directory dir.
func RemoveRecord(dir string) {
	_ = os.Remove(filepath.Join(dir, RecordFile))
}
