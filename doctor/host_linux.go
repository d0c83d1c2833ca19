package doctor

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// System is the real host.
func System() Host { return sysHost{} }

type sysHost struct{}

var _ Host = sysHost{}

func (sysHost) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (sysHost) Stat(path string) (FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return FileInfo{}, err
	}
	out := FileInfo{Mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		out.UID, out.GID = int(st.Uid), int(st.Gid)
	}
	return out, nil
}

func (sysHost) Getxattr(path, name string) ([]byte, error) {
	buf := make([]byte, 64)
	for {
		n, err := unix.Getxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 1<<16 {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr", Path: path, Err: err}
		}
		return buf[:n], nil
	}
}

func (sysHost) LookPath(file string) (string, error) {
	p, err := exec.LookPath(file)
	if err != nil {
		// sbin directories are often missing from a user's PATH.
		for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
			if fi, serr := os.Stat(d + "/" + file); serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return d + "/" + file, nil
			}
		}
	}
	return p, err
}

func (sysHost) Statfs(path string) (FSInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FSInfo{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return FSInfo{Type: int64(st.Type), Flags: int64(st.Flags), Avail: st.Bavail * uint64(st.Bsize)}, nil
}

func (sysHost) Access(path string, mode uint32) error { return unix.Access(path, mode) }

func (sysHost) Dial(socket string) error {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}
