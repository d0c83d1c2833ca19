package transfer

import "golang.org/x/sys/unix"

// umask reads the process umask (setting it back at once).
func umask() int {
	m := unix.Umask(0o22)
	unix.Umask(m)
	return m
}
