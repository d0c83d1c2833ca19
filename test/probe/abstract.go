package main

// probe abstract NAME: connect to the abstract unix socket @NAME (stream,
// then datagram) and send a line; prints "stream: RESULT" and
// "dgram: RESULT". A box in a network namespace of its own cannot name the
// host's abstract sockets; one sharing the host's (--net host) can, unless
// it is scoped. Run from init, before main's switch, so that main.go's
// list needs no change. probe abstract-listen NAME is the other end, for
// a box's own sockets.

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 3 {
		return
	}
	switch os.Args[1] {
	case "abstract":
		abstractAttack(os.Args[2])
	case "abstract-listen":
		abstractListen(os.Args[2])
	default:
		return
	}
	os.Exit(0)
}

// abstractListen accepts one stream connection on @name (for 5 s) and
// prints "listen-got: LINE".
func abstractListen(name string) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + name})
	}
	if err == nil {
		err = unix.Listen(fd, 1)
	}
	if err != nil {
		result("listen", err)
		return
	}
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	c, _, err := unix.Accept(fd)
	if err != nil {
		result("listen", err)
		return
	}
	b := make([]byte, 128)
	n, _ := unix.Read(c, b)
	fmt.Printf("listen-got: %s", b[:max(n, 0)])
}

func abstractAttack(name string) {
	for _, k := range []struct {
		key string
		typ int
	}{{"stream", unix.SOCK_STREAM}, {"dgram", unix.SOCK_DGRAM}} {
		fd, err := unix.Socket(unix.AF_UNIX, k.typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			result(k.key, err)
			continue
		}
		sa := &unix.SockaddrUnix{Name: "@" + name}
		if k.typ == unix.SOCK_STREAM {
			if err = unix.Connect(fd, sa); err == nil {
				_, err = unix.Write(fd, []byte("from a box\n"))
			}
		} else {
			err = unix.Sendto(fd, []byte("from a box\n"), 0, sa)
		}
		unix.Close(fd)
		result(k.key, err)
	}
}
