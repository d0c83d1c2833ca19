// Command workload runs inside boxes started by the VM test rig
// (test/vm): it does one thing a resource limit must stop.
//
//	workload alloc MiB      touch MiB mebibytes of memory, 1 MiB at a time
//	workload fork PATH      start "PATH sleep 600" until fork fails, report, then
//	                        hold every child until stdin closes
//	workload spin SECONDS   keep one CPU busy (until stdin closes, at most SECONDS)
//	workload cgroup         print this process's cgroup v2 path
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: workload alloc|fork|spin|cgroup ARG")
		os.Exit(2)
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	switch os.Args[1] {
	case "alloc":
		n, _ := strconv.Atoi(arg)
		var keep [][]byte
		for i := 0; i < n; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
			if i%16 == 0 {
				fmt.Printf("allocated %d MiB\n", i+1)
			}
		}
		fmt.Printf("allocated %d MiB, not killed\n", len(keep))
	case "fork":
		os.Exit(fork(arg))
	case "spin":
		s, _ := strconv.Atoi(arg)
		end := time.Now().Add(time.Duration(s) * time.Second)
		var stop atomic.Bool
		go func() { // stdin closing ends the spin early
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop.Store(true)
		}()
		x := 0
		for time.Now().Before(end) && !stop.Load() {
			for i := 0; i < 1000000; i++ {
				x += i
			}
		}
		fmt.Println("spun", x > 0)
	case "cgroup":
		b, _ := os.ReadFile("/proc/self/cgroup")
		for _, l := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(l, "0::"); ok {
				fmt.Println(p)
			}
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown workload", os.Args[1])
		os.Exit(2)
	}
}

// fork starts single-threaded children until the kernel refuses. Go's own
// threads count against pids.max too, so the runtime is kept from needing
// new ones: one P, no GC.
func fork(sleeper string) int {
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(-1)
	started := 0
	var ferr error
	for started < 1000 {
		_, err := syscall.ForkExec(sleeper, []string{sleeper, "sleep", "600"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
		if err != nil {
			ferr = err
			break
		}
		started++
	}
	fmt.Printf("started %d children; fork failed: %v\n", started, ferr)
	// Hold the children (and this process) until the driver closes stdin;
	// a raw read keeps the scheduler from starting a thread meanwhile.
	var b [1]byte
	syscall.RawSyscall(syscall.SYS_READ, 0, uintptr(unsafe.Pointer(&b[0])), 1)
	if ferr == syscall.EAGAIN {
		return 0
	}
	return 1
}
