package network

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
)

func parseIP(s string) net.IP { return net.ParseIP(s) }

func pair(t *testing.T) (helper, init *Conn) {
	t.Helper()
	hf, inf, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	if helper, err = FileConn(hf); err != nil {
		t.Fatal(err)
	}
	if init, err = FileConn(inf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { helper.Close(); init.Close() })
	return helper, init
}

func TestHandshakeMessages(t *testing.T) {
	helper, init := pair(t)
	if err := init.Send(Message{Type: MsgHello, Version: WireVersion}); err != nil {
		t.Fatal(err)
	}
	r, err := helper.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != MsgHello || r.Version != WireVersion {
		t.Fatalf("got %+v", r.Message)
	}
	// The helper's end passes credentials: the sender's pid, here ours.
	if r.PID != os.Getpid() {
		t.Errorf("PID = %d, want %d", r.PID, os.Getpid())
	}
	cfg := &DriverConfig{Dev: Device, IP: BoxIP, Netmask: Prefix, Gateway: Gateway, DNS: []string{DNS}, MTU: MTU, Opaque: map[string]string{"k": "v"}}
	if err := helper.Send(Message{Type: MsgConfigure, Driver: DriverPasta, Net: cfg, PortOpaque: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	r, err = init.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != MsgConfigure || r.Driver != DriverPasta || r.Net.IP != BoxIP || r.Net.Opaque["k"] != "v" || r.PortOpaque["a"] != "b" {
		t.Fatalf("got %+v %+v", r.Message, r.Net)
	}
	if r.PID != 0 {
		t.Errorf("the init's end received credentials: %d", r.PID)
	}
}

func TestHandshakeCarriesFiles(t *testing.T) {
	helper, init := pair(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := init.Send(Message{Type: MsgReady, Dev: Device}, pw); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r, err := helper.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Files) != 1 {
		t.Fatalf("got %d files", len(r.Files))
	}
	if _, err := r.Files[0].WriteString("through"); err != nil {
		t.Fatal(err)
	}
	r.Files[0].Close()
	b, _ := io.ReadAll(pr)
	if string(b) != "through" {
		t.Errorf("read %q through the passed pipe", b)
	}
}

func TestHandshakeEOF(t *testing.T) {
	helper, init := pair(t)
	init.Close()
	if _, err := helper.Recv(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after the peer closed: %v, want ErrClosed", err)
	}
}

// PeerGone sees the other end's close while what it sent before is still
// unread (an early box that has exited already; network/host/helper).
func TestHandshakePeerGone(t *testing.T) {
	helper, init := pair(t)
	if helper.PeerGone() {
		t.Fatal("PeerGone with the other end open")
	}
	if err := init.Send(Message{Type: MsgReady, Dev: Device}); err != nil {
		t.Fatal(err)
	}
	if helper.PeerGone() {
		t.Fatal("PeerGone with the other end open and a message queued")
	}
	init.Close()
	if !helper.PeerGone() {
		t.Fatal("PeerGone is false after the other end closed")
	}
	if r, err := helper.Recv(); err != nil || r.Type != MsgReady {
		t.Fatalf("the queued message after the close: %+v %v", r.Message, err)
	}
}
