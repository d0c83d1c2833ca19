// Command tcplat measures TCP connection latency for bench/suite-net.sh:
//
//	tcplat serve ADDR     echo server (runs inside the box; static binary)
//	tcplat probe ADDR N   N times: connect, send one byte, read it back,
//	                      close; prints JSON with the medians and tails
//
// The round trip is the figure that matters for a published port: the
// host accepts the connection at once, and the first byte shows when the
// forward to the box is really in place.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tcplat serve ADDR | tcplat probe ADDR N")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "probe":
		n := 1000
		if len(os.Args) > 3 {
			n, _ = strconv.Atoi(os.Args[3])
		}
		probe(os.Args[2], n)
	default:
		os.Exit(2)
	}
}

func serve(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go func() {
			_, _ = io.Copy(c, c)
			c.Close()
		}()
	}
}

type stats struct {
	Median float64 `json:"median_us"`
	P90    float64 `json:"p90_us"`
	P99    float64 `json:"p99_us"`
}

func summarize(d []time.Duration) stats {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) float64 {
		return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1000
	}
	return stats{Median: at(0.5), P90: at(0.9), P99: at(0.99)}
}

func probe(addr string, n int) {
	var connect, rtt []time.Duration
	b := []byte{'x'}
	failures := 0
	for i := 0; i < n; i++ {
		t0 := time.Now()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			failures++
			continue
		}
		t1 := time.Now()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(b); err == nil {
			_, err = io.ReadFull(c, b)
		}
		t2 := time.Now()
		c.Close()
		if err != nil {
			failures++
			continue
		}
		connect = append(connect, t1.Sub(t0))
		rtt = append(rtt, t2.Sub(t0))
	}
	if len(rtt) == 0 {
		fmt.Fprintf(os.Stderr, "tcplat: every connection to %s failed\n", addr)
		os.Exit(1)
	}
	out := map[string]any{"n": len(rtt), "failures": failures, "connect": summarize(connect), "roundtrip": summarize(rtt)}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
