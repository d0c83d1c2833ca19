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
// not have: lo's flags by ioctl; a box's interface by rtnetlink, in one
// batch of requests on one socket (it is on the box's start path).

// LoopbackUp sets lo up.
func LoopbackUp() error { return linkUp("lo") }

// configureInterface does what rootlesskit's child does with ip(8): MTU
// and up, address, default route.
func configureInterface(dev, ip string, prefix int, gateway string, mtu int) error {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return fmt.Errorf("configuring %s: bad address %q", dev, ip)
	}
	var gw netip.Addr
	if gateway != "" {
		if gw, err = netip.ParseAddr(gateway); err != nil || !gw.Is4() {
			return fmt.Errorf("configuring %s: bad gateway %q", dev, gateway)
		}
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("configuring %s: %w", dev, err)
	}
	defer unix.Close(fd)
	// A netlink socket takes the interface ioctls too.
	ifr, err := unix.NewIfreq(dev)
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", dev, err)
	}
	index := int(ifr.Uint32())
	reqs := []netlinkReq{
		{unix.RTM_NEWLINK, linkUpMTU(index, mtu), fmt.Sprintf("setting %s up with MTU %d", dev, mtu)},
		{unix.RTM_NEWADDR, addr4(index, a, prefix), fmt.Sprintf("adding %s/%d to %s", ip, prefix, dev)},
	}
	if gw.IsValid() {
		reqs = append(reqs, netlinkReq{unix.RTM_NEWROUTE, defaultRoute4(index, gw), "adding the default route via " + gateway})
	}
	return netlinkBatch(fd, reqs)
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

// netlinkReq is one rtnetlink request: its type, body and what it does
// (for an error).
type netlinkReq struct {
	typ  uint16
	body []byte
	what string
}

// netlinkBatch sends reqs in one message on rtnetlink socket fd (the
// kernel runs them in order) and waits for each one's acknowledgement.
func netlinkBatch(fd int, reqs []netlinkReq) error {
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	var msg []byte
	for i, r := range reqs {
		h := make([]byte, unix.SizeofNlMsghdr)
		binary.NativeEndian.PutUint32(h[0:4], uint32(unix.SizeofNlMsghdr+len(r.body)))
		binary.NativeEndian.PutUint16(h[4:6], r.typ)
		flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
		if r.typ != unix.RTM_NEWLINK {
			flags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL
		}
		binary.NativeEndian.PutUint16(h[6:8], flags)
		binary.NativeEndian.PutUint32(h[8:12], uint32(i+1)) // sequence
		msg = append(append(msg, h...), r.body...)
	}
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for acked := 0; acked < len(reqs); {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			seq := int(m.Header.Seq)
			if m.Header.Type != unix.NLMSG_ERROR || seq < 1 || seq > len(reqs) {
				continue
			}
			if len(m.Data) < 4 {
				return fmt.Errorf("%s: short netlink acknowledgement", reqs[seq-1].what)
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[0:4])); code != 0 {
				return fmt.Errorf("%s: %w", reqs[seq-1].what, unix.Errno(-code))
			}
			acked++
		}
	}
	return nil
}

// linkUpMTU is an RTM_NEWLINK body that sets link index up, with MTU mtu
// when it is positive.
func linkUpMTU(index, mtu int) []byte {
	// struct ifinfomsg
	body := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(body[4:8], uint32(index))
	binary.NativeEndian.PutUint32(body[8:12], unix.IFF_UP)  // flags
	binary.NativeEndian.PutUint32(body[12:16], unix.IFF_UP) // change
	if mtu > 0 {
		v := make([]byte, 4)
		binary.NativeEndian.PutUint32(v, uint32(mtu))
		body = rtattr(body, unix.IFLA_MTU, v)
	}
	return body
}

func addr4(index int, a netip.Addr, prefix int) []byte {
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
	return body
}

func defaultRoute4(index int, gw netip.Addr) []byte {
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
	return body
}
