package gvisor

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNormalizeUpstreams(t *testing.T) {
	got, err := NormalizeUpstreams([]string{"192.0.2.53", "127.0.0.1:5353", "::1", "[::1]:5300"})
	want := []string{"192.0.2.53:53", "127.0.0.1:5353", "[::1]:53", "[::1]:5300"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"dns.example", "127.0.0.1:", "127.0.0.1:0", "[::1]", "1.2.3.4:99999"} {
		if _, err := NormalizeUpstreams([]string{bad}); err == nil || !strings.Contains(err.Error(), "hint:") {
			t.Errorf("%q: %v, want an error with a hint", bad, err)
		}
	}
}

func TestHostNameservers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(p, []byte("# x\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\nsearch lan\n"), 0o644)
	if got := hostNameservers(p); !reflect.DeepEqual(got, []string{"127.0.0.53:53", "[fe80::1]:53"}) {
		t.Errorf("got %v", got)
	}
	os.WriteFile(p, []byte("search lan\n"), 0o644)
	if got := hostNameservers(p); !reflect.DeepEqual(got, []string{"127.0.0.1:53"}) {
		t.Errorf("without nameservers: %v", got)
	}
}

// The relay passes a query to the first upstream that answers with the
// query's ID, and ignores stray packets.
func TestExchangeUDP(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close() // nothing listens there any more: ICMP port unreachable
	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			wrong := append([]byte{buf[0] ^ 0xff, buf[1]}, buf[2:n]...)
			srv.WriteTo(wrong, from) // a packet with another ID first
			srv.WriteTo(append(append([]byte(nil), buf[:n]...), "answer"...), from)
		}
	}()
	r := &dnsRelay{fixed: []string{deadAddr, srv.LocalAddr().String()}}
	q := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	start := time.Now()
	got := r.exchangeUDP(q)
	if !strings.HasSuffix(string(got), "answer") || got[0] != 0x12 || got[1] != 0x34 {
		t.Fatalf("got %q", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v: the dead upstream was not skipped at once", d)
	}
}
