package child

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/msg"
	"golang.org/x/sys/unix"
)

// TestServePortsSpeaksRootlesskit: rootlesskit's own host side of the
// builtin port driver (package msg, as the network helper uses it) gets a
// working connection from servePorts, and a bad request an error.
func TestServePortsSpeaksRootlesskit(t *testing.T) {
	dir := t.TempDir()
	socket, fifo := filepath.Join(dir, "sock"), filepath.Join(dir, "ready")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- servePorts(map[string]string{portSocketOpaque: socket, portReadyOpaque: fifo}, ready)
	}()
	r, err := os.OpenFile(fifo, os.O_RDONLY, 0) // as the host side does
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Read(make([]byte, 1)); n != 0 { // end of file: the box side is ready
		t.Fatal("the readiness pipe carried data")
	}
	r.Close()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatal(err)
	}

	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := msg.Initiate(c); err != nil || rep.Error != "" {
		t.Fatalf("init: %+v %v", rep, err)
	}
	c.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	fd, err := msg.ConnectToChildWithSocketPath(socket, port.Spec{Proto: "tcp", ChildPort: p, ParentIP: "127.0.0.1"}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	f := os.NewFile(uintptr(fd), "conn")
	defer f.Close()
	conn, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	in, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := in.Read(b); err != nil || string(b) != "hi" {
		t.Errorf("through the forwarded connection: %q %v", b, err)
	}
	in.Close()

	for _, bad := range []port.Spec{{Proto: "sctp", ChildPort: p}, {Proto: "tcp", ChildIP: "not-an-ip", ChildPort: p}} {
		if _, err := msg.ConnectToChildWithSocketPath(socket, bad, nil); err == nil {
			t.Errorf("connect %+v: no error", bad)
		}
	}
	// Published on the gateway or the wildcard: the box's loopback.
	for _, parent := range []string{"10.0.2.2", "0.0.0.0", ""} {
		c, err := dialPort(portRequest{Proto: "tcp4", Port: p, ParentIP: parent, HostGatewayIP: "10.0.2.2"})
		if err != nil {
			t.Errorf("dialPort, published on %q: %v", parent, err)
			continue
		}
		c.Close()
	}
}
