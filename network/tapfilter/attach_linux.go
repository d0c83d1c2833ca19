package tapfilter

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Attach sets the filter on the open tap descriptor fd (the driver's
// end), dropping also what goes to the prefixes drop.
func Attach(fd uintptr, drop ...netip.Prefix) error {
	p := Program(drop...)
	prog := unix.SockFprog{Len: uint16(len(p)), Filter: &p[0]}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.TUNATTACHFILTER, uintptr(unsafe.Pointer(&prog))); e != 0 {
		return fmt.Errorf("attaching the tap filter: %w", e)
	}
	return nil
}

// AttachToProcess sets the filter on the tap that process pid (a
// driver devbox started: pasta, slirp4netns) has open: it takes a copy
// of the driver's descriptor (pidfd_getfd, Linux 5.6), which shares the
// open file and so its filter.
func AttachToProcess(pid int, drop ...netip.Prefix) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("finding the driver's tap: %w", err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("finding the driver's tap: pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(dir + "/" + e.Name()); err != nil || l != "/dev/net/tun" {
			continue
		}
		target, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			return fmt.Errorf("taking the driver's tap descriptor: pidfd_getfd: %w", err)
		}
		err = Attach(uintptr(fd), drop...)
		unix.Close(fd)
		if err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("the driver has no tap open")
	}
	return nil
}
