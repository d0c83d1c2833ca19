package box

import (
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseInitProcess(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"1234 99 4026531836 4026531837\n", true},
		{"1234\n", false}, // the old format: a bare pid is not enough
		{"1 99 4026531836 4026531837", false},
		{"-5 99 1 1", false},
		{"1234 99 1", false},
		{"1234 0 1 1", false},
		{"1234 x 1 1", false},
		{"1234 99 1 1 5", false},
	}
	for _, c := range cases {
		p, err := parseInitProcess(c.in)
		if (err == nil) != c.ok {
			t.Errorf("parseInitProcess(%q) = %+v, %v; want ok=%v", c.in, p, err, c.ok)
		}
		if err == nil {
			if q, _ := parseInitProcess(p.String()); q != p {
				t.Errorf("round trip of %q: %+v", c.in, q)
			}
		}
	}
}

func TestPidOneBelow(t *testing.T) {
	cases := []struct {
		status string
		want   bool
	}{
		{"Name:\tdevbox-init\nNSpid:\t4711\t1\n", true},
		{"NSpid:\t4711\t20\t1\n", true},
		{"NSpid:\t4711\n", false},    // the caller's own namespace
		{"NSpid:\t4711\t7\n", false}, // in a box, not its init
		{"Name:\tsleep\n", false},
	}
	for _, c := range cases {
		if got := pidOneBelow(c.status); got != c.want {
			t.Errorf("pidOneBelow(%q) = %v, want %v", c.status, got, c.want)
		}
	}
}

// TestSignalVerifiedSparesOthers: a record naming an unrelated process of
// the user (here a sleep, with its real start time) is refused, and the
// process lives.
func TestSignalVerifiedSparesOthers(t *testing.T) {
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		t.Skip(err)
	}
	defer c.Process.Kill()
	pid := c.Process.Pid
	if _, err := ProbeInit("/proc", pid); err == nil {
		t.Fatal("a sleep passed as a box init")
	}
	var st unix.Stat_t
	_ = unix.Stat("/proc/self/ns/pid", &st)
	for _, rec := range []InitProcess{
		{PID: pid, Start: 1, PIDNS: st.Ino, UserNS: st.Ino},
		{PID: pid, Start: 1, PIDNS: 1, UserNS: 1},
	} {
		if err := signalVerified("/proc", rec, unix.SIGKILL); err == nil {
			t.Errorf("signalled %+v", rec)
		}
	}
	if err := unix.Kill(pid, 0); err != nil {
		t.Errorf("the sleep (pid %s) is gone: %v", strconv.Itoa(pid), err)
	}
}
