package child

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/network/tapfilter"
	"github.com/devbox-dev/devbox/test/testutil"
)

// earlyEnv makes the test binary a box init's network part: in a user and
// network namespace of its own, Begin(fd 3, early), then a DNS query, then
// what its network looks like on stdout; it exits when stdin closes.
const earlyEnv = "DEVBOX_CHILD_TEST_EARLY"

func TestMain(m *testing.M) {
	if os.Getenv(earlyEnv) != "" {
		os.Exit(earlyBox())
	}
	os.Exit(m.Run())
}

func earlyBox() int {
	if _, err := Begin(os.NewFile(3, "net"), true); err != nil {
		fmt.Fprintln(os.Stderr, "Begin:", err)
		return 1
	}
	// Nothing of the helper has been read: the box's first query goes out
	// now, and waits in the tap for a stack.
	if c, err := net.Dial("udp4", network.DNS+":53"); err == nil {
		_, _ = c.Write([]byte("query"))
		c.Close()
	}
	ifc, err := net.InterfaceByName(network.Device)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	addrs, _ := ifc.Addrs()
	route, _ := os.ReadFile("/proc/net/route")
	fmt.Printf("mtu %d up %v addrs %v\n%s", ifc.MTU, ifc.Flags&net.FlagUp != 0, addrs, route)
	// Again: the batch names the request the kernel refused.
	fmt.Printf("again: %v\n", configureInterface(network.Device, network.BoxIP, network.Prefix, network.Gateway, network.MTU))
	var b [1]byte
	_, _ = os.Stdin.Read(b[:])
	return 0
}

// An early Begin sets up the box's network alone and hands the tap over
// without waiting for the helper: Hello (Early) and Ready with the tap are
// there before the helper sent anything; the tap carries devbox's filter
// already; what the box sent meanwhile (the ARP request of its first DNS
// query) is queued in the tap for the helper's stack.
func TestEarlyBegin(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		testutil.Skip(t, "no user namespaces")
	}
	if err := network.CheckTun(); err != nil {
		testutil.Skip(t, err.Error())
	}
	helperEnd, initEnd, err := network.NewPair()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := network.FileConn(helperEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out, errb bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), earlyEnv+"=1")
	cmd.ExtraFiles = []*os.File{initEnd}
	cmd.Stdout, cmd.Stderr = &out, &errb
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}}
	if err := cmd.Start(); err != nil {
		testutil.Skip(t, "cannot make a user and network namespace: "+err.Error())
	}
	initEnd.Close()
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	hello, err := conn.Recv()
	if err != nil || hello.Type != network.MsgHello || !hello.Early || hello.Version != network.WireVersion {
		t.Fatalf("hello: %+v %v (stderr %s)", hello.Message, err, errb.String())
	}
	ready, err := conn.Recv()
	if err != nil || ready.Type != network.MsgReady || ready.Dev != network.Device || len(ready.Files) != 1 || ready.Message.Files[0] != network.FileTap {
		t.Fatalf("ready: %+v, %d files, %v (stderr %s)", ready.Message, len(ready.Files), err, errb.String())
	}
	tap := ready.Files[0]
	defer tap.Close()
	var prog unix.SockFprog
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, tap.Fd(), unix.TUNGETFILTER, uintptr(unsafe.Pointer(&prog))); e != 0 {
		t.Fatalf("the tap has no filter: TUNGETFILTER: %v", e)
	}
	if want := len(tapfilter.Program()); int(prog.Len) != want {
		t.Errorf("the tap's filter has %d instructions, want tapfilter's %d", prog.Len, want)
	}
	// Persistent: the helper's close leaves it to the namespace's end.
	ifr, err := unix.NewIfreq("")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(int(tap.Fd()), unix.TUNGETIFF, ifr); err != nil {
		t.Fatal(err)
	}
	if ifr.Uint16()&unix.IFF_PERSIST == 0 || ifr.Name() != network.Device {
		t.Errorf("tap %s flags %#x: not persistent", ifr.Name(), ifr.Uint16())
	}
	// The ARP request for the DNS server's address, queued in the tap.
	if err := unix.SetNonblock(int(tap.Fd()), true); err != nil {
		t.Fatal(err)
	}
	found := false
	buf := make([]byte, 65536)
	for deadline := time.Now().Add(5 * time.Second); !found && time.Now().Before(deadline); {
		n, err := unix.Read(int(tap.Fd()), buf)
		if err == unix.EAGAIN {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		f := buf[:n]
		// Ethernet + ARP: EtherType 0x0806, opcode 1, target IP at 38.
		found = n >= 42 && binary.BigEndian.Uint16(f[12:14]) == 0x0806 && binary.BigEndian.Uint16(f[20:22]) == 1 &&
			net.IP(f[38:42]).Equal(net.ParseIP(network.DNS))
	}
	if !found {
		t.Error("no ARP request for the DNS server came through the tap")
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the box side: %v (stderr %s)", err, errb.String())
	}
	got := out.String()
	for _, want := range []string{fmt.Sprintf("mtu %d up true", network.MTU), network.BoxIP + "/24",
		// The default route via the gateway (10.0.2.2, little-endian hex).
		"tap0\t00000000\t0202000A",
		"again: adding 10.0.2.100/24 to tap0: file exists"} {
		if !strings.Contains(got, want) {
			t.Errorf("the box's network: no %q in\n%s", want, got)
		}
	}
}
