package main

// probe fake-holder DIR SECONDS: another local user's process posing as
// devbox's warm holder. It listens on every holder socket name in DIR
// (h-00.sock … h-ff.sock, writable by anyone), prints "ready", and for
// SECONDS prints one "request: …" line for each request it receives (the
// request's first field and the descriptors that came with it, by what
// they are), answering "no" so that devbox goes on as without a holder.
// probe fake-listen SECONDS PATH…: the same on the given socket paths (a
// box's agent socket, say).
// Run from init, like abstract.go.

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 4 || os.Args[1] != "fake-holder" && os.Args[1] != "fake-listen" {
		return
	}
	secs, paths := os.Args[3], os.Args[4:]
	if os.Args[1] == "fake-holder" {
		secs, paths = os.Args[3], nil
		for i := 0; i < 256; i++ {
			paths = append(paths, fmt.Sprintf("%s/h-%02x.sock", os.Args[2], i))
		}
	} else {
		secs, paths = os.Args[2], os.Args[3:]
	}
	n, err := strconv.Atoi(secs)
	if err != nil {
		fmt.Println("fake-listen:", err)
		os.Exit(2)
	}
	fakeListen(paths, time.Duration(n)*time.Second)
	os.Exit(0)
}

func fakeListen(paths []string, d time.Duration) {
	var pfds []unix.PollFd
	for _, p := range paths {
		_ = unix.Unlink(p)
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrUnix{Name: p})
		}
		if err == nil {
			err = unix.Chmod(p, 0o777)
		}
		if err == nil {
			err = unix.Listen(fd, 8)
		}
		if err != nil {
			result("listen "+p, err)
			return
		}
		pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	fmt.Println("ready")
	end := time.Now().Add(d)
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*64))
	for time.Now().Before(end) {
		n, err := unix.Poll(pfds, int(time.Until(end)/time.Millisecond)+1)
		if err != nil || n == 0 {
			continue
		}
		for _, p := range pfds {
			if p.Revents == 0 {
				continue
			}
			c, _, err := unix.Accept4(int(p.Fd), unix.SOCK_CLOEXEC)
			if err != nil {
				continue
			}
			_ = unix.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
			n, oobn, _, _, err := unix.Recvmsg(c, buf, oob, unix.MSG_CMSG_CLOEXEC)
			if err != nil {
				result("request", err)
				unix.Close(c)
				continue
			}
			var got []string
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for i := range msgs {
					fds, _ := unix.ParseUnixRights(&msgs[i])
					for _, fd := range fds {
						l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
						got = append(got, l)
						unix.Close(fd)
					}
				}
			}
			first, _, _ := bytes.Cut(buf[:min(n, 200)], []byte{0})
			fmt.Printf("request: %q with %d descriptors: %s\n", first, len(got), strings.Join(got, " "))
			_ = unix.Sendto(c, []byte("no"), unix.MSG_NOSIGNAL, nil)
			unix.Close(c)
		}
	}
}
