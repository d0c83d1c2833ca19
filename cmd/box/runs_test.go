package box

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/devbox-dev/devbox/network"
	nethost "github.com/devbox-dev/devbox/network/host"
)

func TestHoldsLock(t *testing.T) {
	locks := filepath.Join(t.TempDir(), "locks")
	os.WriteFile(locks, []byte(""+
		"1: POSIX  ADVISORY  WRITE 4242 08:01:777 0 EOF\n"+
		"2: FLOCK  ADVISORY  WRITE 4242 fe:00:802938 0 EOF\n"+
		"3: FLOCK  ADVISORY  WRITE 99 fe:00:123 0 EOF\n"), 0o644)
	for _, c := range []struct {
		pid      int
		dev, ino uint64
		want     bool
	}{
		{4242, 0xfe00, 802938, true},
		{4242, 0x0801, 777, false}, // a POSIX lock is not the run's flock
		{99, 0xfe00, 802938, false},
		{4242, 0xfe00, 123, false},
	} {
		if got := holdsLock(locks, c.pid, c.dev, c.ino); got != c.want {
			t.Errorf("holdsLock(%d, %x, %d) = %v, want %v", c.pid, c.dev, c.ino, got, c.want)
		}
	}
}

func TestPortsColumnAndQuote(t *testing.T) {
	st := &nethost.State{Ports: []network.Port{
		{PortSpec: network.PortSpec{Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8080, BoxPort: 80}},
		{PortSpec: network.PortSpec{Proto: "tcp", HostIP: "127.0.0.1", HostPort: 5173, BoxPort: 5173}, NotForwarded: "taken"},
		{PortSpec: network.PortSpec{Proto: "udp", HostIP: "0.0.0.0", HostPort: 53, BoxPort: 53}},
	}}
	for _, c := range []struct {
		in   *nethost.State
		want string
	}{
		{nil, "-"},
		{&nethost.State{}, "-"},
		{st, "127.0.0.1:8080->80/tcp,0.0.0.0:53->53/udp"},
	} {
		if got := portsColumn(c.in); got != c.want {
			t.Errorf("portsColumn = %q, want %q", got, c.want)
		}
	}
	for in, want := range map[string]string{"debian": "debian", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "/tmp:/x": "/tmp:/x"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
