package warm

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A replayed box's cgroup, made as devbox run makes one without limits in
// a delegated base (cgroup.Setup for the user's devbox.scope or a
// delegated subtree): a directory devbox-<id> in the recorded base, the
// init moved into it before its start byte (it has run nothing of the box
// yet), its group path recorded in the box directory (cgroup.RecordFile,
// by which devbox stats and update find the box), and at the end an OOM
// kill reported as devbox run reports it, the record and the directory
// removed. A base that is no longer a cgroup2 directory of this user's
// leaves the run to the CLI.
type boxCgroup struct {
	dir   string // absolute
	group string // relative to the mount, as in /proc/PID/cgroup
	fd    int
}

const (
	cgroupRoot   = "/sys/fs/cgroup" // cgroup.DefaultRoot
	cgroup2Magic = 0x63677270       // CGROUP2_SUPER_MAGIC
	recordFile   = "cgroup"         // cgroup.RecordFile
	exitOOM      = 137              // cmdutil.ExitOOM
)

// newBoxCgroup makes the cgroup of box id in base, or returns nil.
func newBoxCgroup(base, id string) *boxCgroup {
	if len(base) <= len(cgroupRoot)+1 || base[:len(cgroupRoot)+1] != cgroupRoot+"/" || dotSegment(base) {
		return nil
	}
	var fs syscall.Statfs_t
	var st syscall.Stat_t
	if syscall.Statfs(base, &fs) != nil || fs.Type != cgroup2Magic || syscall.Lstat(base, &st) != nil ||
		st.Mode&syscall.S_IFMT != syscall.S_IFDIR || int(st.Uid) != os.Getuid() {
		return nil
	}
	dir := base + "/devbox-" + id
	if syscall.Mkdir(dir, 0o755) != nil {
		return nil
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		syscall.Rmdir(dir)
		return nil
	}
	return &boxCgroup{dir: dir, group: dir[len(cgroupRoot):], fd: fd}
}

// join moves process pid into the cgroup and records it in boxDir.
func (c *boxCgroup) join(pid int, boxDir string) bool {
	fd, err := syscall.Openat(c.fd, "cgroup.procs", syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	_, err = syscall.Write(fd, []byte(strconv.Itoa(pid)))
	syscall.Close(fd)
	if err != nil {
		return false
	}
	tmp := boxDir + "/" + recordFile + ".tmp"
	return os.WriteFile(tmp, []byte(c.group+"\n"), 0o600) == nil && os.Rename(tmp, boxDir+"/"+recordFile) == nil
}

// finish reports an OOM kill in the box (exit code 137 then, whatever
// code was) and removes the record in boxDir and the cgroup.
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
				code = exitOOM
			}
		}
	}
	os.Remove(boxDir + "/" + recordFile)
	if err := c.remove(); err != nil {
		os.Stderr.WriteString("devbox: warning: removing cgroup " + c.group + ": " + err.Error() + "\n")
	}
	return code
}

// remove removes the cgroup once its last process is gone (the init may
// still be exiting), killing what is left after a while.
func (c *boxCgroup) remove() error {
	syscall.Close(c.fd)
	var err error
	for i := 0; i < 200; i++ {
		if err = syscall.Rmdir(c.dir); err == nil || err == syscall.ENOENT {
			return nil
		}
		if err != syscall.EBUSY {
			return err
		}
		if i == 50 {
			if fd, e := syscall.Open(c.dir+"/cgroup.kill", syscall.O_WRONLY|syscall.O_CLOEXEC, 0); e == nil {
				syscall.Write(fd, []byte("1"))
				syscall.Close(fd)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return err
}
