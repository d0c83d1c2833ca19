package main

// probe fake-holder DIR SECONDS: another local user's process posing as
// devbox's warm holder. It listens on every holder socket name in DIR
// (h-00.sock … h-ff.sock, writable by anyone), prints "ready", and for
// SECONDS prints one "request: …" line for each request it receives (the
// request's first field and the descriptors that came with it, by what
// they are), answering "no" so that devbox goes on as without a holder.
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
	if len(os.Args) != 4 || os.Args[1] != "fake-holder" {
		return
	}
	secs, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fmt.Println("fake-holder:", err)
		os.Exit(2)
	}
	fakeHolder(os.Args[2], time.Duration(secs)*time.Second)
	os.Exit(0)
}

func fakeHolder(dir string, d time.Duration) {
	var pfds []unix.PollFd
	for i := 0; i < 256; i++ {
		p := fmt.Sprintf("%s/h-%02x.sock", dir, i)
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
			first, _, _ := bytes.Cut(buf[:n], []byte{0})
			fmt.Printf("request: %q with %d descriptors: %s\n", first, len(got), strings.Join(got, " "))
			_ = unix.Sendto(c, []byte("no"), unix.MSG_NOSIGNAL, nil)
			unix.Close(c)
		}
	}
}
