package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
// ErrNoRecord.
func ReadRecord(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoRecord
	}
	if err != nil {
		return "", err
	}
	p := strings.TrimSpace(string(b))
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
		return "", fmt.Errorf("%s: invalid cgroup path %q", filepath.Join(dir, RecordFile), p)
	}
	return p, nil
}

// RemoveRecord removes the record of box directory dir.
func RemoveRecord(dir string) {
	_ = os.Remove(filepath.Join(dir, RecordFile))
}
