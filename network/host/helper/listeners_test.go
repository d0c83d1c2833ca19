package helper

import (
	"github.com/devbox-dev/devbox/network/host"
	"net"
	"net/netip"
	"os"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

const procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1205336 1 00000000cdc4aaee 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1322286 2 00000000dcd8241b 100 0 0 10 0
   2: 6402000A:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1323086 2 00000000e19af67d 100 0 0 10 0
   3: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1001        0 1323087 1 00000000e19af67d 20 4 30 10 -1
   4: garbage
`

const procTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:1F93 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F94 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 3 1 0 100 0 0 10 0
`

func TestParseProcNetTCP(t *testing.T) {
	got := append(ParseProcNetTCP(procTCP), ParseProcNetTCP(procTCP6)...)
	want := []Listener{
		{netip.MustParseAddr("127.0.0.1"), 8080},
		{netip.MustParseAddr("0.0.0.0"), 80},
		{netip.MustParseAddr("10.0.2.100"), 8081},
		{netip.MustParseAddr("::"), 8082},
		{netip.MustParseAddr("::1"), 8083},
		{netip.MustParseAddr("127.0.0.1"), 8084}, // v4-mapped
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// The kernel's own table: a listener opened here shows up.
func TestParseProcNetTCPLive(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip("no IPv4 loopback:", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	b, err := os.ReadFile("/proc/self/net/tcp")
	if err != nil {
		t.Skip(err)
	}
	for _, x := range ParseProcNetTCP(string(b)) {
		if x.Port == port && x.Addr == netip.MustParseAddr("127.0.0.1") {
			return
		}
	}
	t.Errorf("listener on 127.0.0.1:%d not found in /proc/self/net/tcp", port)
}

func TestForwardable(t *testing.T) {
	ls := []Listener{
		{netip.MustParseAddr("::"), 80},
		{netip.MustParseAddr("0.0.0.0"), 80}, // preferred for port 80
		{netip.MustParseAddr("::1"), 3000},
		{netip.MustParseAddr("127.0.0.1"), 5000},
		{netip.MustParseAddr("10.0.2.100"), 6000},
		{netip.MustParseAddr("0.0.0.0"), 8080}, // published: skipped
	}
	got := forwardable(ls, map[int]bool{8080: true})
	want := map[int]netip.Addr{
		80:   netip.MustParseAddr("127.0.0.1"),
		3000: netip.MustParseAddr("::1"),
		5000: netip.MustParseAddr("127.0.0.1"),
		6000: netip.MustParseAddr("10.0.2.100"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := forwardable([]Listener{{netip.MustParseAddr("::"), 22}}, nil); got[22] != netip.IPv6Loopback() {
		t.Errorf(":: is dialled at %v, want ::1", got[22])
	}
}

func TestHostPort(t *testing.T) {
	for _, c := range []struct{ box, start, want int }{
		{3000, 1024, 3000},
		{80, 1024, 8080},
		{443, 1024, 8443},
		{80, 0, 80},
		{65535, 1024, 65535},
		{1023, 1024, 9023},
	} {
		if got := hostPort(c.box, c.start); got != c.want {
			t.Errorf("hostPort(%d, %d) = %d, want %d", c.box, c.start, got, c.want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := host.ReadState(dir); !os.IsNotExist(err) {
		t.Fatalf("no file: %v", err)
	}
	s := &host.State{Driver: "gvisor", BoxIP: "10.0.2.100", PID: 42}
	if err := host.WriteState(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := host.ReadState(dir)
	if err != nil || got.Driver != "gvisor" || got.PID != 42 {
		t.Fatalf("%+v, %v", got, err)
	}
}

// sock_diag sees a listener of this network namespace.
func TestDiagListenersLive(t *testing.T) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		t.Skip("no sock_diag:", err)
	}
	f := os.NewFile(uintptr(fd), "diag")
	defer f.Close()
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer l4.Close()
	want := []Listener{{netip.MustParseAddr("127.0.0.1"), l4.Addr().(*net.TCPAddr).Port}}
	if l6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		defer l6.Close()
		want = append(want, Listener{netip.IPv6Loopback(), l6.Addr().(*net.TCPAddr).Port})
	}
	for i := 0; i < 3; i++ { // the same socket serves dump after dump
		got, err := diagListeners(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("dump %d: %v not among %v", i, w, got)
			}
		}
	}
}
