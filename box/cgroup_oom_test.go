package box

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/cgroup"
)

func TestFinishCgroupOOM(t *testing.T) {
	root := t.TempDir()
	p := "/u/devbox-1"
	dir := filepath.Join(root, p)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n"), 0o644)
	b, _ := cgroup.Load(root, p)
	f, _ := b.File()
	dir2 := t.TempDir()
	cgroup.WriteRecord(dir2, p)
	oom, _ := finishCgroup(b, f, dir2, cgroup.Limits{Memory: 64 << 20}) // a directory of files, not a cgroup: its removal fails
	if oom == nil || !strings.HasPrefix(oom.Msg, "the box hit its memory limit (--memory 64MiB): the kernel killed a process in it") {
		t.Errorf("oom %+v", oom)
	}
	if _, err := cgroup.ReadRecord(dir2); err == nil {
		t.Error("the record is left")
	}
	if oom, err := finishCgroup(nil, nil, dir2, cgroup.Limits{}); oom != nil || err != nil {
		t.Errorf("no cgroup: %+v", oom)
	}
}
