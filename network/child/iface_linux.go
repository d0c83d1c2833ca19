package child

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Interface configuration without the ip(8) program, which the image need
// not have: flags and MTU by ioctl, address and default route by rtnetlink.

// LoopbackUp sets lo up.
func LoopbackUp() error { return linkUp("lo") }

// configureInterface does what rootlesskit's child does with ip(8): MTU,
// address, up, default route.
func configureInterface(dev, ip string, prefix int, gateway string, mtu int) error {
	if mtu > 0 {
		if err := setMTU(dev, mtu); err != nil {
			return fmt.Errorf("setting the MTU of %s to %d: %w", dev, mtu, err)
		}
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return fmt.Errorf("configuring %s: bad address %q", dev, ip)
	}
	ifc, err := net.InterfaceByName(dev)
	if err != nil {
		return fmt.Errorf("configuring %s: %w", dev, err)
	}
	if err := addAddr4(ifc.Index, a, prefix); err != nil {
		return fmt.Errorf("adding %s/%d to %s: %w", ip, prefix, dev, err)
	}
	if err := linkUp(dev); err != nil {
		return fmt.Errorf("setting %s up: %w", dev, err)
	}
	if gateway != "" {
		gw, err := netip.ParseAddr(gateway)
		if err != nil || !gw.Is4() {
			return fmt.Errorf("configuring %s: bad gateway %q", dev, gateway)
		}
		if err := addDefaultRoute4(ifc.Index, gw); err != nil {
			return fmt.Errorf("adding the default route via %s: %w", gateway, err)
		}
	}
	return nil
}

func ifreqIoctl(name string, req uint, set func(*unix.Ifreq)) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if req == unix.SIOCSIFFLAGS {
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return err
		}
	}
	set(ifr)
	return unix.IoctlIfreq(fd, req, ifr)
}

func linkUp(name string) error {
	return ifreqIoctl(name, unix.SIOCSIFFLAGS, func(ifr *unix.Ifreq) { ifr.SetUint16(ifr.Uint16() | unix.IFF_UP) })
}

func setMTU(name string, mtu int) error {
	return ifreqIoctl(name, unix.SIOCSIFMTU, func(ifr *unix.Ifreq) { ifr.SetUint32(uint32(mtu)) })
}

// rtattr appends one route attribute (padded to 4 bytes).
func rtattr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	h := make([]byte, unix.SizeofRtAttr)
	binary.NativeEndian.PutUint16(h[0:2], uint16(l))
	binary.NativeEndian.PutUint16(h[2:4], typ)
	b = append(b, h...)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// netlinkDo sends one rtnetlink request and waits for its acknowledgement.
func netlinkDo(typ uint16, body []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:4], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:6], typ)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	binary.NativeEndian.PutUint32(msg[8:12], 1) // sequence
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq != 1 {
				continue
			}
			if len(m.Data) < 4 {
				return fmt.Errorf("short netlink acknowledgement")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[0:4])); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
}

func addAddr4(index int, a netip.Addr, prefix int) error {
	// struct ifaddrmsg
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = unix.AF_INET
	body[1] = byte(prefix)
	body[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(body[4:8], uint32(index))
	ip := a.As4()
	body = rtattr(body, unix.IFA_LOCAL, ip[:])
	body = rtattr(body, unix.IFA_ADDRESS, ip[:])
	bcast := netip.PrefixFrom(a, prefix).Masked().Addr().As4()
	for i := range bcast {
		bcast[i] |= ^net.CIDRMask(prefix, 32)[i]
	}
	body = rtattr(body, unix.IFA_BROADCAST, bcast[:])
	return netlinkDo(unix.RTM_NEWADDR, body)
}

func addDefaultRoute4(index int, gw netip.Addr) error {
	// struct rtmsg
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = unix.AF_INET
	body[4] = unix.RT_TABLE_MAIN
	body[5] = unix.RTPROT_BOOT
	body[6] = unix.RT_SCOPE_UNIVERSE
	body[7] = unix.RTN_UNICAST
	g := gw.As4()
	body = rtattr(body, unix.RTA_GATEWAY, g[:])
	oif := make([]byte, 4)
	binary.NativeEndian.PutUint32(oif, uint32(index))
	body = rtattr(body, unix.RTA_OIF, oif)
	return netlinkDo(unix.RTM_NEWROUTE, body)
}
