package hostexec

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/devbox-dev/devbox/runtime/agent"
	"github.com/devbox-dev/devbox/test/testutil"
)

// peerEnv makes the test binary a client that connects to the socket it
// names, says one byte and (with peerLinger) waits for stdin to close.
const (
	peerEnv    = "DEVBOX_HOSTEXEC_TEST_PEER"
	peerLinger = "DEVBOX_HOSTEXEC_TEST_LINGER"
)

func TestMain(m *testing.M) {
	if p := os.Getenv(peerEnv); p != "" {
		c, err := net.Dial("unixpacket", p)
		if err != nil {
			os.Exit(2)
		}
		c.Write([]byte{1})
		if os.Getenv(peerLinger) != "" {
			var b [1]byte
			os.Stdin.Read(b[:])
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The helper serves a peer of the box's own PID and user namespaces only:
// not one in a user namespace of its own (a sandbox built in the box that
// keeps its PID namespace), not one that has gone (its pid may be another
// process's by the time it is looked at).
func TestPeerError(t *testing.T) {
	me, err := nsOfProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	s := &server{uid: uint32(os.Getuid()), boxNS: me}
	cases := []struct {
		name   string
		userNS bool // the peer unshares its user namespace
		linger bool // the peer is still there when judged
		want   string
	}{
		{name: "a process of the box", linger: true},
		{name: "a nested user namespace", userNS: true, linger: true, want: "user namespace of its own"},
		// Gone: SO_PEERPIDFD fails, or (newer kernels) gives a pidfd that
		// no longer answers.
		{name: "a peer that is gone", want: "not a process of the box|gone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "host.sock")
			l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), peerEnv+"="+sock)
			if c.linger {
				cmd.Env = append(cmd.Env, peerLinger+"=1")
			}
			stdin, _ := cmd.StdinPipe()
			if c.userNS {
				cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
					UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
					GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}}
			}
			if err := cmd.Start(); err != nil {
				if c.userNS {
					testutil.Skip(t, "no user namespace here: "+err.Error())
				}
				t.Fatal(err)
			}
			uc, err := l.AcceptUnix()
			if err != nil {
				t.Fatal(err)
			}
			conn := agent.NewConn(uc)
			defer conn.Close()
			var b [1]byte
			uc.Read(b[:])
			if !c.linger {
				cmd.Wait()
			}
			err = s.peerError(conn)
			stdin.Close()
			if c.linger {
				cmd.Wait()
			}
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !regexp.MustCompile(c.want).MatchString(err.Error())):
				t.Errorf("got %v, want a refusal that says %q", err, c.want)
			}
		})
	}
}
