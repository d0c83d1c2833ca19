package main

// probe leave NAME: leave traces a later box must not see, one per kind of
// state a box could share with another one started by the same warm
// holder: a file in /dev/shm, a POSIX message queue, a System V shared
// memory segment (key from NAME), an abstract unix socket that stays
// bound while a child lives on. Prints "leave KIND: ok"
// or the error.
// probe find NAME: look for each; prints "FOUND KIND" for each one seen,
// and "looked: N".
// Run from init, like abstract.go.

import (
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) != 3 || os.Args[1] != "leave" && os.Args[1] != "find" {
		return
	}
	if os.Args[1] == "leave" {
		leave(os.Args[2])
	} else {
		find(os.Args[2])
	}
	os.Exit(0)
}

// shmKey is the System V key for name.
func shmKey(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() & 0x7fffffff)
}

func leave(name string) {
	result("leave shm-file", os.WriteFile("/dev/shm/"+name, []byte("left"), 0o644))
	f, err := os.OpenFile("/dev/mqueue/"+name, os.O_CREATE|os.O_RDWR, 0o644)
	if err == nil {
		f.Close()
	}
	result("leave mqueue", err)
	_, err = unix.SysvShmGet(shmKey(name), 4096, unix.IPC_CREAT|0o644)
	result("leave sysv-shm", err)
	// An abstract socket, held by a child that outlives this process (it
	// dies with the box).
	c := exec.Command("/proc/self/exe", "abstract-listen", name)
	err = c.Start()
	// Left once it listens: /proc/net/unix lists it (a find right after
	// this process ends must see it).
	for i := 0; err == nil && i < 200; i++ {
		if b, rerr := os.ReadFile("/proc/net/unix"); rerr == nil && strings.Contains(string(b), " @"+name+"\n") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	result("leave abstract", err)
}

func find(name string) {
	n := 0
	look := func(kind string, err error) {
		n++
		if err == nil {
			fmt.Println("FOUND " + kind)
		}
	}
	_, err := os.Stat("/dev/shm/" + name)
	look("shm-file", err)
	_, err = os.Stat("/dev/mqueue/" + name)
	look("mqueue", err)
	_, err = unix.SysvShmGet(shmKey(name), 4096, 0)
	look("sysv-shm", err)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + name})
		unix.Close(fd)
	}
	look("abstract", err)
	fmt.Printf("looked: %d\n", n)
}
