package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startWithPidfd starts argv as a child of the test with a pidfd of its
// own, as the agent starts a session.
func startWithPidfd(t *testing.T, argv ...string) (*exec.Cmd, int) {
	t.Helper()
	pidfd := -1
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if pidfd < 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Skip("this kernel gives no pidfd (CLONE_PIDFD, Linux 5.2)")
	}
	return cmd, pidfd
}

func TestWaitPidfd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		argv     []string
		exited   bool
		code     int
		signal   syscall.Signal
		signaled bool
	}{
		{"exit 0", []string{"/bin/sh", "-c", "exit 0"}, true, 0, 0, false},
		{"exit 3", []string{"/bin/sh", "-c", "exit 3"}, true, 3, 0, false},
		{"exit 255 after a pause", []string{"/bin/sh", "-c", "sleep 0.1; exit 255"}, true, 255, 0, false},
		{"killed", []string{"/bin/sh", "-c", "kill -KILL $$"}, false, 0, syscall.SIGKILL, true},
		{"terminated", []string{"/bin/sh", "-c", "kill -TERM $$"}, false, 0, syscall.SIGTERM, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, pidfd := startWithPidfd(t, tc.argv...)
			ws, ok := waitPidfd(pidfd)
			if !ok {
				t.Fatal("waitPidfd: not reaped")
			}
			if ws.Exited() != tc.exited || ws.Signaled() != tc.signaled {
				t.Fatalf("status %#x: exited %v signaled %v, want %v %v", uint32(ws), ws.Exited(), ws.Signaled(), tc.exited, tc.signaled)
			}
			if tc.exited && ws.ExitStatus() != tc.code {
				t.Errorf("exit status %d, want %d", ws.ExitStatus(), tc.code)
			}
			if tc.signaled && ws.Signal() != tc.signal {
				t.Errorf("signal %v, want %v", ws.Signal(), tc.signal)
			}
			// Reaped: nothing is left for anyone else to wait for.
			var ws2 unix.WaitStatus
			if pid, err := unix.Wait4(cmd.Process.Pid, &ws2, unix.WNOHANG, nil); err != unix.ECHILD {
				t.Errorf("wait4 after waitPidfd: pid %d, %v; want ECHILD", pid, err)
			}
		})
	}
}

// A process reaped by someone else first (the agent's SIGCHLD reaper):
// waitPidfd says so and does not block.
func TestWaitPidfdReapedElsewhere(t *testing.T) {
	cmd, pidfd := startWithPidfd(t, "/bin/sh", "-c", "exit 7")
	var ws unix.WaitStatus
	if _, err := unix.Wait4(cmd.Process.Pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	if ws.ExitStatus() != 7 {
		t.Fatalf("wait4: status %d, want 7", ws.ExitStatus())
	}
	if _, ok := waitPidfd(pidfd); ok {
		t.Error("waitPidfd reported a process that wait4 had reaped")
	}
}

func TestSiginfoWaitStatus(t *testing.T) {
	for _, tc := range []struct {
		code, status int32
		want         unix.WaitStatus
	}{
		{cldExited, 0, 0},
		{cldExited, 3, 3 << 8},
		{cldExited, 255, 255 << 8},
		{2, int32(unix.SIGKILL), unix.WaitStatus(unix.SIGKILL)},
		{cldDumped, int32(unix.SIGSEGV), unix.WaitStatus(unix.SIGSEGV) | 0x80},
	} {
		info := siginfoChild{Code: tc.code, Status: tc.status}
		if got := info.waitStatus(); got != tc.want {
			t.Errorf("code %d status %d: %#x, want %#x", tc.code, tc.status, uint32(got), uint32(tc.want))
		}
	}
}

func TestHasChildren(t *testing.T) {
	if hasChildren() {
		t.Skip("the test process already has children")
	}
	cmd := exec.Command("/bin/sh", "-c", "exec sleep 10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !hasChildren() {
		t.Error("hasChildren = false with a child running")
	}
	cmd.Process.Kill()
	// Exited but not reaped: still a child (hasChildren must not reap it).
	var info siginfoChild
	for {
		_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_PID, uintptr(cmd.Process.Pid), uintptr(unsafe.Pointer(&info)), unix.WEXITED|unix.WNOWAIT, 0, 0)
		if e != unix.EINTR {
			break
		}
	}
	if !hasChildren() {
		t.Error("hasChildren = false with a zombie child")
	}
	cmd.Wait()
	if hasChildren() {
		t.Error("hasChildren = true after the only child was reaped")
	}
}

func TestReadAll(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4095, 4096, 4097, 3*4096 + 17} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte('a' + i%26)
		}
		p := filepath.Join(dir, fmt.Sprint(size))
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readAll(p)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%d bytes: read %d bytes, not the file", size, len(got))
		}
	}
	if _, err := readAll(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
	if _, err := readAll(dir); err == nil {
		t.Error("a directory read as a file")
	}
	// The box's own files are input: a FIFO (whose open would block
	// without a writer) and a file over the bound are refused.
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(fifo); err == nil {
		t.Error("a FIFO read as a file")
	}
	huge := filepath.Join(dir, "huge")
	if err := os.WriteFile(huge, nil, 0o644); err != nil || os.Truncate(huge, maxAccountFile+1) != nil {
		t.Fatal("making a sparse file")
	}
	if _, err := readAll(huge); err == nil {
		t.Error("a file over maxAccountFile read whole")
	}
}
