package main

// probe device PATH: open PATH read-write from inside a box; for /dev/kvm
// also ask the kernel for KVM's API version (KVM_GET_API_VERSION), which
// only a usable KVM device answers. Prints "open: …" and "kvm-api: N".
// Run from init, before main's switch, like probe agent.

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 3 || os.Args[1] != "device" {
		return
	}
	os.Exit(deviceProbe(os.Args[2]))
}

func deviceProbe(path string) int {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	result("open", err)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	if path == "/dev/kvm" {
		const kvmGetAPIVersion = 0xae00 // _IO(KVMIO, 0x00)
		v, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmGetAPIVersion, 0)
		if errno != 0 {
			result("kvm-api", errno)
		} else {
			fmt.Printf("kvm-api: %d\n", v)
		}
	}
	return 0
}
