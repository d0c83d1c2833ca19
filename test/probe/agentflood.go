package main

// probe agent-flood SOCKET N: from inside a box that reaches its agent's
// socket (through a volume), N rounds of odd packets, one connection
// each, every one carrying as many descriptors as SCM_RIGHTS takes (253,
// copies of one /dev/null): a packet as large as the socket sends
// (garbage), an empty packet, an exec request (more descriptors than the
// agent accepts: MSG_CTRUNC) and a status request. Each connection waits
// for the agent to close it. Prints "sent: N", "answered: N" and the first
// error of each kind. Run from init, like agent.go.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 4 || os.Args[1] != "agent-flood" {
		return
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fmt.Println("agent-flood:", err)
		os.Exit(2)
	}
	agentFlood(os.Args[2], n)
	os.Exit(0)
}

func agentFlood(sock string, rounds int) {
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		result("open /dev/null", err)
		return
	}
	fds := make([]int, 253)
	for i := range fds {
		fds[i] = null
	}
	rights := unix.UnixRights(fds...)
	exec, _ := json.Marshal(map[string]any{"type": "exec", "args": []string{"/bin/true"}, "uid": 0, "gid": 0})
	status, _ := json.Marshal(map[string]any{"type": "status"})
	packets := map[string][]byte{"large": bytes.Repeat([]byte("x"), 160<<10), "empty": nil, "exec": exec, "status": status}
	sent, answered := 0, 0
	errs := map[string]error{}
	for r := 0; r < rounds; r++ {
		for kind, p := range packets {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				err = unix.Connect(fd, &unix.SockaddrUnix{Name: sock})
			}
			if err == nil {
				_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
				err = unix.Sendmsg(fd, p, rights, nil, 0)
			}
			if err == nil {
				sent++
				// Until the agent closes: its reply, then EOF.
				buf := make([]byte, 4096)
				start := time.Now()
				for time.Since(start) < 5*time.Second {
					n, _, _, _, rerr := unix.Recvmsg(fd, buf, nil, 0)
					if rerr != nil || n == 0 {
						break
					}
				}
				answered++
			} else if errs[kind] == nil {
				errs[kind] = err
			}
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
	fmt.Printf("sent: %d\nanswered: %d\n", sent, answered)
	for k, err := range errs {
		result("send "+k, err)
	}
}
