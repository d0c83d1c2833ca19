package box

import (
	"testing"

	"github.com/devbox-dev/devbox/network"
	nethost "github.com/devbox-dev/devbox/network/host"
)

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
