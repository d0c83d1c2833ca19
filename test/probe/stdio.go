package main

// probe stdio: what a box does with a file the user gave as its stdin
// (`devbox run IMAGE < FILE`) or stdout (`>> FILE`): it opens each of fds
// 0-2 anew through /proc/self/fd (with its own rights, not the
// descriptor's), appends a line to the first writable one, reads back what
// was in it, and changes its mode with fchmod. Results go to stderr when
// stdout is under attack, one "fdN op: result" line each.
// Run from init, like abstract.go.

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 2 || os.Args[1] != "stdio" {
		return
	}
	stdio()
	os.Exit(0)
}

func stdio() {
	for fd := 0; fd < 3; fd++ {
		key := "fd" + strconv.Itoa(fd)
		l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		fmt.Fprintf(os.Stderr, "%s: %s\n", key, l)
		p := "/proc/self/fd/" + strconv.Itoa(fd)
		w, err := unix.Open(p, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
		if err == nil {
			_, err = unix.Write(w, []byte("# written from a box by probe stdio\n"))
			unix.Close(w)
		}
		fmt.Fprintf(os.Stderr, "%s write: %s\n", key, outcome(err))
		r, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			b := make([]byte, 256)
			var n int
			n, err = unix.Pread(r, b, 0)
			unix.Close(r)
			if err == nil {
				fmt.Fprintf(os.Stderr, "%s read back: %q\n", key, b[:n])
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s read: %v\n", key, err)
		}
		fmt.Fprintf(os.Stderr, "%s fchmod: %s\n", key, outcome(unix.Fchmod(fd, 0o666)))
	}
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
