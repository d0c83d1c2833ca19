//go:build integration

package integration

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEscapeTerminalKeptBySession: `devbox exec` without a box pty (-T, or
// output to a pipe as in `devbox exec BOX make | tee log`) while the
// caller's terminal is its stdin or stderr. The box's command looks for a
// terminal among its fds 0-2 that is not the box's own, and leaves a
// process behind that keeps it and reads it; the test then types a line
// into that terminal, as the user would at the shell devbox returned to.
// The box must never hold the caller's terminal: it would read what the
// user types on the host (a password for sudo) and write to it at any
// time, long after the session ended.
func TestEscapeTerminalKeptBySession(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	e.stopBoxesAtCleanup()
	e.ok("create", "sb", "--image", img, "--home", sandboxHome(t), "--net", "none", "--grace", "60")
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for i, tc := range []struct {
		name          string
		args          []string
		stdin, stderr bool // the caller's terminal on stdin, on stderr
	}{
		{name: "stdin, -T", args: []string{"-T"}, stdin: true, stderr: true},
		{name: "stdin, output piped", stdin: true},
		{name: "stderr only", stderr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, slave := openPTY(t)
			defer master.Close()
			stolen := "/tmp/stolen-" + string(rune('a'+i))
			args := append([]string{"exec"}, tc.args...)
			args = append(args, "sb", "--", "/probe", "ttykeep", stolen)
			c := e.cmd(args...)
			var out, errb bytes.Buffer
			c.Stdin, c.Stdout, c.Stderr = devnull, &out, &errb
			if tc.stdin {
				c.Stdin = slave
			}
			if tc.stderr {
				c.Stderr = slave
			}
			// What devbox writes to the terminal is read and dropped.
			go func() {
				b := make([]byte, 4096)
				for {
					if _, err := master.Read(b); err != nil {
						return
					}
				}
			}()
			if err := c.Run(); err != nil {
				t.Fatalf("devbox %v: %v\n%s%s", args, err, out.String(), errb.String())
			}
			slave.Close()
			t.Logf("probe:\n%s", out.String())
			// The user types at the shell devbox returned to.
			const secret = "devbox-typed-secret"
			if _, err := master.Write([]byte(secret + "\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			got := e.run("exec", "sb", "--", "cat", stolen)
			if strings.Contains(got.stdout, secret) {
				t.Errorf("a process left in the box read what was typed into the caller's terminal: %q", got.stdout)
			}
			if !strings.Contains(out.String(), "kept: none") {
				t.Errorf("the session got the caller's terminal:\n%s", out.String())
			}
		})
	}
}

// TestEscapeTerminalKeptByRun: the same attack from `devbox run -T` (an
// ephemeral box and a kept one): the process the command leaves behind
// keeps the caller's terminal and writes what it reads back to it after
// "stolen: ". The box ends with its command, so nothing typed afterwards
// may be read.
func TestEscapeTerminalKeptByRun(t *testing.T) {
	e := newEnv(t)
	img := probeImage(t, e)
	e.stopBoxesAtCleanup()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "ephemeral"},
		{name: "kept", args: []string{"--name", "kept"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, slave := openPTY(t)
			defer master.Close()
			args := append([]string{"run", "-T", "--net", "none"}, tc.args...)
			args = append(args, img, "--", "/probe", "ttykeep", "/tmp/stolen")
			c := e.cmd(args...)
			var stdout bytes.Buffer
			c.Stdin, c.Stdout, c.Stderr = slave, &stdout, slave
			err := c.Run()
			slave.Close()
			mfd := int(master.Fd())
			unix.SetNonblock(mfd, true)
			t.Logf("probe:\n%s", stdout.String())
			if err != nil {
				t.Fatalf("devbox %v: %v\n%s", args, err, readAvailable(mfd))
			}
			readAvailable(mfd)
			const secret = "devbox-typed-secret"
			if _, err := unix.Write(mfd, []byte(secret+"\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if got := readAvailable(mfd); strings.Contains(got, "stolen: "+secret) {
				t.Errorf("a process left by the run read what was typed into the caller's terminal: %q", got)
			}
		})
	}
}

// readAvailable returns what non-blocking fd has to read now.
func readAvailable(fd int) string {
	var all []byte
	b := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, b)
		if n <= 0 || err != nil {
			return string(all)
		}
		all = append(all, b[:n]...)
	}
}
