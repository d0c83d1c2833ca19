package network

import (
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    PortSpec
		wantErr string
	}{
		{"8080:80", PortSpec{"tcp", "127.0.0.1", 8080, 80}, ""},
		{"8080:80/tcp", PortSpec{"tcp", "127.0.0.1", 8080, 80}, ""},
		{"5353:53/udp", PortSpec{"udp", "127.0.0.1", 5353, 53}, ""},
		{"5353:53/UDP", PortSpec{"udp", "127.0.0.1", 5353, 53}, ""},
		{"0.0.0.0:8080:80", PortSpec{"tcp", "0.0.0.0", 8080, 80}, ""},
		{"192.0.2.7:1:65535/udp", PortSpec{"udp", "192.0.2.7", 1, 65535}, ""},
		{"[::1]:8080:80", PortSpec{"tcp", "::1", 8080, 80}, ""},
		{"[::]:8080:80/udp", PortSpec{"udp", "::", 8080, 80}, ""},
		{"[2001:db8::0001]:9:9", PortSpec{"tcp", "2001:db8::1", 9, 9}, ""},
		{"80", PortSpec{}, "both the host port and the box port"},
		{"", PortSpec{}, "both the host port and the box port"},
		{"8080:80/sctp", PortSpec{}, "tcp or udp"},
		{"8080:80/", PortSpec{}, "tcp or udp"},
		{"0:80", PortSpec{}, "host port: 0 is not between"},
		{"8080:0", PortSpec{}, "box port: 0 is not between"},
		{"65536:80", PortSpec{}, "not between 1 and 65535"},
		{"99999999999999999999:80", PortSpec{}, "not between 1 and 65535"},
		{"+80:80", PortSpec{}, "is not a number"},
		{"-1:80", PortSpec{}, "is not a number"},
		{"8080:", PortSpec{}, "box port: missing"},
		{":80", PortSpec{}, "host port: missing"},
		{"localhost:8080:80", PortSpec{}, "must be an IPv4 address"},
		{"::1:8080:80", PortSpec{}, "in brackets"},
		{"[::1]8080:80", PortSpec{}, "followed by ]:"},
		{"[127.0.0.1]:8080:80", PortSpec{}, "not an IPv6 address"},
		{"[fe80::1%eth0]:8080:80", PortSpec{}, "not an IPv6 address"},
		{"[::1]:8080", PortSpec{}, "want [HOST_IP]:HOST_PORT:BOX_PORT"},
		{"[::1", PortSpec{}, "followed by ]:"},
		{"1.2.3:80:80", PortSpec{}, "must be an IPv4 address"},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePort(%q) error = %v, want it to mention %q", tt.in, err, tt.wantErr)
			} else if !strings.Contains(err.Error(), "hint:") {
				t.Errorf("ParsePort(%q) error has no hint: %v", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePort(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePort(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		// The canonical form parses to the same spec.
		if again, err := ParsePort(got.String()); err != nil || again != got {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
}

func TestParsePortsConflicts(t *testing.T) {
	tests := []struct {
		in      []string
		wantErr bool
	}{
		{[]string{"8080:80", "8081:80"}, false},
		{[]string{"8080:80", "8080:53/udp"}, false},
		{[]string{"8080:80", "8080:81"}, true},
		{[]string{"127.0.0.1:8080:80", "127.0.0.2:8080:81"}, false},
		{[]string{"0.0.0.0:8080:80", "127.0.0.1:8080:81"}, true},
		{[]string{"[::]:8080:80", "8080:81"}, true},
	}
	for _, tt := range tests {
		_, err := ParsePorts(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePorts(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
		}
	}
}

func TestHostAddr(t *testing.T) {
	for in, want := range map[string]string{"8080:80": "127.0.0.1:8080", "[::1]:9:9": "[::1]:9"} {
		p, err := ParsePort(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.HostAddr(); got != want {
			t.Errorf("%q: HostAddr() = %q, want %q", in, got, want)
		}
	}
}

// FuzzParsePort checks that ParsePort never panics, and that whatever it
// accepts is in range and survives a round trip through String.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"8080:80", "0.0.0.0:1:2/udp", "[::1]:8080:80/tcp", "[", "]:", "1:1:1:1", "/udp", "::::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			return
		}
		if p.HostPort < 1 || p.HostPort > 65535 || p.BoxPort < 1 || p.BoxPort > 65535 {
			t.Fatalf("ParsePort(%q) = %+v: port out of range", s, p)
		}
		if p.Proto != "tcp" && p.Proto != "udp" {
			t.Fatalf("ParsePort(%q) = %+v: protocol", s, p)
		}
		again, err := ParsePort(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip of %q: %+v → %q → %+v, %v", s, p, p.String(), again, err)
		}
		_ = p.HostAddr()
	})
}
