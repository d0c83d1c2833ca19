package network

import "testing"

func TestEtcHosts(t *testing.T) {
	want := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.2.100\tdev\n10.0.2.2\thost.devbox.internal\n"
	if got := EtcHosts("dev", true); got != want {
		t.Errorf("EtcHosts(dev, true) =\n%s\nwant\n%s", got, want)
	}
	want = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.2.100\tdev\n"
	if got := EtcHosts("dev", false); got != want {
		t.Errorf("EtcHosts(dev, false) =\n%s\nwant\n%s", got, want)
	}
}

func TestResolvConf(t *testing.T) {
	host := "# comment\nnameserver 127.0.0.53\nnameserver ::1\nsearch  corp.example lan\noptions edns0 trust-ad\ndomain corp.example\nsortlist 130.155.160.0\n"
	want := "# written by devbox: the user-mode DNS forwards to the host's resolvers\n" +
		"nameserver 10.0.2.3\nsearch corp.example lan\noptions edns0 trust-ad\ndomain corp.example\n"
	if got := ResolvConf(host); got != want {
		t.Errorf("ResolvConf =\n%s\nwant\n%s", got, want)
	}
	if got := ResolvConf(""); got != "# written by devbox: the user-mode DNS forwards to the host's resolvers\nnameserver 10.0.2.3\n" {
		t.Errorf("ResolvConf(empty) = %q", got)
	}
}

func TestSubnetIPNet(t *testing.T) {
	n := SubnetIPNet()
	if n.String() != Subnet {
		t.Errorf("SubnetIPNet() = %s", n)
	}
	for _, a := range []string{BoxIP, Gateway, DNS} {
		if !n.Contains(parseIP(a)) {
			t.Errorf("%s is not in %s", a, Subnet)
		}
	}
}
