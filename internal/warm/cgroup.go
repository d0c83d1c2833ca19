package warm

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/internal/safefile"
)

// A replayed box's cgroup, made as cgroup.Setup makes one without limits
// in a delegated base: devbox-<id> in the recorded base (which must still
// be a cgroup2 directory of the user's), recorded in the box directory
// (cgroup.RecordFile) for stats and update, an OOM kill reported at the
// end.
type boxCgroup struct {
	dir string // absolute
	fd  int
}

const (
	cgroupRoot   = "/sys/fs/cgroup" // cgroup.DefaultRoot
	cgroup2Magic = 0x63677270       // CGROUP2_SUPER_MAGIC
	recordFile   = "/cgroup"        // cgroup.RecordFile
)

// newBoxCgroup makes the cgroup of box id in base, or returns nil.
func newBoxCgroup(base, id string) *boxCgroup {
	var fs syscall.Statfs_t
	var st syscall.Stat_t
	if !strings.HasPrefix(base, cgroupRoot+"/") || dotSegment(base) || syscall.Statfs(base, &fs) != nil || fs.Type != cgroup2Magic ||
		syscall.Lstat(base, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR || int(st.Uid) != os.Getuid() {
		return nil
	}
	c := &boxCgroup{dir: base + "/devbox-" + id}
	if syscall.Mkdir(c.dir, 0o755) != nil {
		return nil
	}
	var err error
	if c.fd, err = syscall.Open(c.dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); err != nil {
		syscall.Rmdir(c.dir)
		return nil
	}
	return c
}

// record writes the cgroup's group path into boxDir.
func (c *boxCgroup) record(boxDir string) {
	_ = safefile.WriteFile(boxDir+recordFile, []byte(c.dir[len(cgroupRoot):]+"\n"), 0o600)
}

// finish reports an OOM kill (exit code 137) and removes the record in
// boxDir and the cgroup.
func (c *boxCgroup) finish(code int, boxDir string) int {
	if ev, err := os.ReadFile(c.dir + "/memory.events"); err == nil {
		if _, s, ok := strings.Cut(string(ev), "oom_kill "); ok {
			s, _, _ = strings.Cut(s, "\n")
			if n, _ := strconv.Atoi(s); n > 0 {
				procs := "a process"
				if n > 1 {
					procs = s + " processes"
				}
				os.Stderr.WriteString("devbox: the box hit its memory limit: the kernel killed " + procs + " in it for running out of memory (hint: allow more with --memory)\n")
				code = 137 // cmdutil.ExitOOM
			}
		}
	}
	os.Remove(boxDir + recordFile)
	if err := c.remove(); err != nil {
		os.Stderr.WriteString("devbox: warning: removing cgroup " + c.dir + ": " + err.Error() + "\n")
	}
	return code
}

// remove removes the cgroup once its last process is gone, killing what
// is left after a while.
func (c *boxCgroup) remove() error {
	syscall.Close(c.fd)
	for i := 0; ; i++ {
		err := syscall.Rmdir(c.dir)
		switch {
		case err == nil || err == syscall.ENOENT:
			return nil
		case err != syscall.EBUSY || i == 200:
			return err
		case i == 50:
			_ = os.WriteFile(c.dir+"/cgroup.kill", []byte("1"), 0)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
