package main

// probe tap: the box's root takes over its network's tap device, which
// the box's init created (persistent, with devbox's filter attached) and
// handed to the network helper: it opens /dev/net/tun (when the user
// shared it with --device) and asks for tap0 as it is, as a multi-queue
// device and as a tun, each an attach to the device the helper reads. A
// box that got it would read and write the helper's side of its network,
// past the filter. One "attach FLAGS: result" line each, then a tap of
// its own (allowed: it leads nowhere).
// Run from init, like abstract.go.

import (
	"os"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 2 || os.Args[1] != "tap" {
		return
	}
	tap()
	os.Exit(0)
}

func tap() {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	result("open /dev/net/tun", err)
	if err != nil {
		return
	}
	for _, f := range []struct {
		name  string
		flags uint16
	}{{"tap", unix.IFF_TAP | unix.IFF_NO_PI}, {"multi-queue", unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE}, {"tun", unix.IFF_TUN | unix.IFF_NO_PI}} {
		ifr, err := unix.NewIfreq("tap0")
		if err == nil {
			ifr.SetUint16(f.flags)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		result("attach "+f.name, err)
	}
	own, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		var ifr *unix.Ifreq
		if ifr, err = unix.NewIfreq("probe0"); err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(own, unix.TUNSETIFF, ifr)
		}
	}
	result("own tap", err)
}
