// Command sessloop times sessions in a running box without process starts
// on the client's side: it dials the box's agent socket N times and runs
// CMD each time (the front's request, stdio on /dev/null), then prints the
// medians of dial, request → started and started → exit, in µs. GAP (a
// duration, default 5ms) is the pause between two sessions.
// Usage: sessloop SOCKET N CMD...
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/devbox-dev/devbox/runtime/agent"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: sessloop SOCKET N CMD...")
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Args[2])
	gap := 5 * time.Millisecond
	if g := os.Getenv("GAP"); g != "" {
		gap, _ = time.ParseDuration(g)
	}
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		panic(err)
	}
	home, _ := os.UserHomeDir()
	var dial, start, exit, total []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		c, err := agent.Dial(os.Args[1])
		if err != nil {
			panic(err)
		}
		t1 := time.Now()
		req := agent.Request{Type: agent.TypeExec, Args: os.Args[3:], UID: os.Getuid(), GID: os.Getgid(),
			Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "TERM=xterm"}, Cwd: home}
		if err := c.Send(req, null, null, null); err != nil {
			panic(err)
		}
		var rep agent.Reply
		if _, err := c.Receive(&rep); err != nil || rep.Type != agent.TypeStarted && rep.Type != agent.TypeExit {
			panic(fmt.Sprint(err, rep))
		}
		t2 := time.Now()
		if rep.Type == agent.TypeStarted { // a command that ended at once may beat it (session.Run takes both)
			if _, err := c.Receive(&rep); err != nil || rep.Type != agent.TypeExit {
				panic(fmt.Sprint(err, rep))
			}
		}
		t3 := time.Now()
		c.Close()
		dial = append(dial, t1.Sub(t0))
		start = append(start, t2.Sub(t1))
		exit = append(exit, t3.Sub(t2))
		total = append(total, t3.Sub(t0))
		time.Sleep(gap) // a new front's start, at least: the agent rearms meanwhile
	}
	med := func(d []time.Duration) int64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2].Microseconds()
	}
	fmt.Printf("dial %d  request->started %d  started->exit %d  total %d (µs, medians of %d)\n",
		med(dial), med(start), med(exit), med(total), n)
}
