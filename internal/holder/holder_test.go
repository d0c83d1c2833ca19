package holder

import (
	"os"
	"reflect"
	"testing"

	"github.com/devbox-dev/devbox/internal/warm"
	"golang.org/x/sys/unix"
)

// TestRequest: a holder takes a request only from its own user, with the
// magic, its fingerprint and the run's descriptors.
func TestRequest(t *testing.T) {
	msg := func(magic, fp string, args ...string) []byte {
		b := []byte(magic + "\x00" + fp + "\x00")
		for _, a := range args {
			b = append(append(b, a...), 0)
		}
		return b
	}
	tests := []struct {
		name string
		msg  []byte
		nfds int
		uid  int
		ok   bool
		args []string
	}{
		{"a run", msg(warm.Magic, "fp", "devbox-init", "fd:4", "3"), 6, os.Getuid(), true, []string{"devbox-init", "fd:4", "3"}},
		{"another fingerprint", msg(warm.Magic, "fp2", "devbox-init"), 6, os.Getuid(), false, nil},
		{"another magic", msg("devbox-holder-0", "fp", "devbox-init"), 6, os.Getuid(), false, nil},
		{"another user", msg(warm.Magic, "fp", "devbox-init"), 6, os.Getuid() + 1, false, nil},
		{"no pipes", msg(warm.Magic, "fp", "devbox-init"), 3, os.Getuid(), false, nil},
		{"too many descriptors", msg(warm.Magic, "fp", "devbox-init"), warm.MaxFDs + 1, os.Getuid(), false, nil},
		{"no arguments", msg(warm.Magic, "fp"), 6, os.Getuid(), false, nil},
		{"not terminated", []byte(warm.Magic + "\x00fp"), 6, os.Getuid(), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(sp[0])
			defer unix.Close(sp[1])
			fds := make([]int, tt.nfds) // stdin, passed n times
			if err := unix.Sendmsg(sp[0], tt.msg, unix.UnixRights(fds...), nil, 0); err != nil {
				t.Fatal(err)
			}
			args, got, ok := request(sp[1], "fp", tt.uid)
			for _, fd := range got {
				unix.Close(fd)
			}
			if ok != tt.ok || (ok && !reflect.DeepEqual(args, tt.args)) {
				t.Errorf("request: ok %v, args %q; want %v, %q", ok, args, tt.ok, tt.args)
			}
			if ok && len(got) != tt.nfds {
				t.Errorf("%d descriptors, want %d", len(got), tt.nfds)
			}
		})
	}
}
