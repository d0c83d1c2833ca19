package gvisor

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/network"
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

// dnsQuery builds a query for name (labels) of type qtype, with an EDNS
// OPT record when edns is set, as a stub resolver sends it.
func dnsQuery(id uint16, name string, qtype uint16, edns bool) []byte {
	q := []byte{byte(id >> 8), byte(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	if edns {
		q[11] = 1
	}
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		q = append(q, byte(len(l)))
		q = append(q, l...)
	}
	q = append(q, 0, byte(qtype>>8), byte(qtype), 0, 1)
	if edns {
		q = append(q, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0)
	}
	return q
}

// The resolver answers the box's own name and host.devbox.internal itself
// (A: the address; AAAA and others: no records, not NXDOMAIN), and leaves
// everything else to the upstreams.
func TestLocalAnswer(t *testing.T) {
	names := network.LocalNames("MyBox", true)
	cases := []struct {
		name   string
		q      []byte
		answer string // "" no local answer; else the A record's address or "empty"
	}{
		{"own name", dnsQuery(0x1234, "mybox", 1, false), "10.0.2.100"},
		{"own name, other case, EDNS", dnsQuery(7, "MYBOX.", 1, true), "10.0.2.100"},
		{"host", dnsQuery(9, "host.devbox.internal", 1, false), "10.0.2.2"},
		{"host AAAA", dnsQuery(9, "host.devbox.internal", 28, false), "empty"},
		{"other name", dnsQuery(9, "example.org", 1, false), ""},
		{"subdomain", dnsQuery(9, "x.mybox", 1, false), ""},
		{"truncated", dnsQuery(9, "mybox", 1, false)[:16], ""},
		{"response", func() []byte { q := dnsQuery(9, "mybox", 1, false); q[2] |= 0x80; return q }(), ""},
		{"pointer", append([]byte{0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12}, 0, 1, 0, 1), ""},
	}
	for _, c := range cases {
		ans := localAnswer(c.q, names)
		switch {
		case c.answer == "" && ans != nil:
			t.Errorf("%s: answered locally: %x", c.name, ans)
		case c.answer == "":
		case ans == nil:
			t.Errorf("%s: no local answer", c.name)
		default:
			if ans[0] != c.q[0] || ans[1] != c.q[1] || ans[2]&0x80 == 0 || ans[3]&0x0f != 0 || ans[5] != 1 {
				t.Errorf("%s: bad header %x", c.name, ans[:12])
			}
			n := int(ans[6])<<8 | int(ans[7])
			if c.answer == "empty" {
				if n != 0 {
					t.Errorf("%s: %d answers, want none", c.name, n)
				}
				continue
			}
			if n != 1 || len(ans) < 4 {
				t.Fatalf("%s: %d answers", c.name, n)
			}
			ip := net.IP(ans[len(ans)-4:]).String()
			if ip != c.answer {
				t.Errorf("%s: %s, want %s", c.name, ip, c.answer)
			}
		}
	}
	if localAnswer(dnsQuery(9, "host.devbox.internal", 1, false), network.LocalNames("b", false)) != nil {
		t.Error("host.devbox.internal answered without host loopback")
	}
}
