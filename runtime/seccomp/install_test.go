package seccomp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// childEnv switches the test binary into a filtered probe process; its value
// is the capability set to compile the filter for, in hex, or "none" for no
// filter (which shows that each probe tells the filter's answer apart).
const childEnv = "_DEVBOX_SECCOMP_TEST_CAPS"

func TestMain(m *testing.M) {
	if v, ok := os.LookupEnv(childEnv); ok {
		os.Exit(probeMain(v))
	}
	os.Exit(m.Run())
}

// probe is one syscall tried under the filter; it returns the error seen.
type probe struct {
	name string
	try  func() error
}

// errnoOf turns a raw syscall result into an error.
func errnoOf(_, _ uintptr, e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// probes are chosen so that the kernel, when the filter lets a call through,
// fails it with an error other than EPERM whatever the caller's privileges
// (bad arguments checked before any permission), or succeeds: an EPERM is
// then the filter's.
func probes(devNull int) []probe {
	return []probe{
		{"getpid", func() error { unix.Getpid(); return nil }},
		{"openat+read+write", func() error {
			fd, err := unix.Openat(unix.AT_FDCWD, "/dev/zero", unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if _, err := unix.Write(fd, []byte("x")); err != nil {
				return err
			}
			_, err = unix.Read(fd, make([]byte, 1))
			return err
		}},
		{"exec /bin/true", func() error { return exec.Command("/bin/true").Run() }},
		// unshare(CLONE_NEWUSER) in a multi-threaded process: EINVAL.
		{"unshare(CLONE_NEWUSER)", func() error { return unix.Unshare(unix.CLONE_NEWUSER) }},
		{"setns(-1)", func() error { return unix.Setns(-1, 0) }},
		// The target is looked up before mount's permission check.
		{"mount", func() error { return unix.Mount("none", "/nonexistent/devbox-seccomp", "tmpfs", 0, "") }},
		// CLONE_NEWUSER|CLONE_FS is rejected before any process is made.
		{"clone(CLONE_NEWUSER|CLONE_FS)", func() error {
			pid, _, e := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_FS, 0, 0, 0, 0, 0)
			if e == 0 && pid == 0 {
				unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
			}
			return errnoOf(pid, 0, e)
		}},
		{"clone3", func() error { return errnoOf(unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)) }},
		{"keyctl", func() error { return errnoOf(unix.RawSyscall(unix.SYS_KEYCTL, 9999, 0, 0)) }},
		{"add_key", func() error {
			return errnoOf(unix.RawSyscall6(unix.SYS_ADD_KEY, 0, 0, 0, 0, 0, 0))
		}},
		{"bpf", func() error { return errnoOf(unix.RawSyscall(unix.SYS_BPF, 9999, 0, 0)) }},
		{"perf_event_open", func() error {
			return errnoOf(unix.RawSyscall6(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0, 0))
		}},
		{"userfaultfd", func() error { return errnoOf(unix.RawSyscall(unix.SYS_USERFAULTFD, 0xffff_ffff, 0, 0)) }},
		{"kexec_load", func() error {
			return errnoOf(unix.RawSyscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xffff_ffff, 0, 0))
		}},
		{"io_uring_setup", func() error { return errnoOf(unix.RawSyscall(unix.SYS_IO_URING_SETUP, 0, 0, 0)) }},
		{"ioctl(TCGETS)", func() error { return ioctl(devNull, unix.TCGETS) }},
		{"ioctl(TIOCSTI)", func() error { return ioctl(devNull, unix.TIOCSTI) }},
		{"ioctl(0x123<<32|TIOCSTI)", func() error { return ioctl(devNull, 0x123<<32|unix.TIOCSTI) }},
		{"ioctl(TIOCLINUX)", func() error { return ioctl(devNull, unix.TIOCLINUX) }},
		{"socket(AF_UNIX)", func() error { return socket(unix.AF_UNIX) }},
		{"socket(AF_VSOCK)", func() error { return socket(unix.AF_VSOCK) }},
		// The kernel reads the domain as an int: this is AF_INET to it.
		{"socket(1<<32|AF_INET)", func() error { return socket(1<<32 | unix.AF_INET) }},
		{"personality(query)", func() error { return errnoOf(unix.RawSyscall(unix.SYS_PERSONALITY, 0xffff_ffff, 0, 0)) }},
		{"personality(ADDR_NO_RANDOMIZE)", func() error {
			return errnoOf(unix.RawSyscall(unix.SYS_PERSONALITY, 0x0040000, 0, 0)) // ADDR_NO_RANDOMIZE
		}},
	}
}

func ioctl(fd int, req uint64) error {
	var c byte = 'x'
	return errnoOf(unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&c))))
}

func socket(domain uint64) error {
	fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(domain), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return e
	}
	unix.Close(int(fd))
	return nil
}

// probeMain runs in the child: filter the locked main goroutine's thread,
// then print one "name<TAB>result" line per probe and the Seccomp field of
// this thread and of another one.
func probeMain(capsHex string) int {
	runtime.LockOSThread()
	devNull, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil && capsHex != "none" {
		var caps uint64
		var prog []unix.SockFilter
		if _, err = fmt.Sscanf(capsHex, "%x", &caps); err == nil {
			prog, err = Program(caps)
		}
		if err == nil {
			err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		}
		if err == nil {
			err = Install(prog)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var out bytes.Buffer
	for _, p := range probes(devNull) {
		fmt.Fprintf(&out, "%s\t%s\n", p.name, result(p.try()))
	}
	fmt.Fprintf(&out, "this thread\t%s\n", seccompMode())
	other := make(chan string)
	go func() { other <- seccompMode() }()
	fmt.Fprintf(&out, "other thread\t%s\n", <-other)
	os.Stdout.Write(out.Bytes())
	return 0
}

func result(err error) string {
	var e unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		return unix.ErrnoName(e)
	}
	return err.Error()
}

// seccompMode returns the calling thread's Seccomp field (0 none, 2 filter).
func seccompMode() string {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "missing"
}

// runProbes re-executes the test binary as a filtered probe process.
func runProbes(t *testing.T, caps string) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+caps)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe process: %v: %s", err, stderr.Bytes())
	}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, res, _ := strings.Cut(sc.Text(), "\t")
		got[name] = res
	}
	return got
}

// TestFilter installs the filter in a child process and tries syscalls.
func TestFilter(t *testing.T) {
	// want per probe, for DefaultCaps, DefaultCaps+SYS_ADMIN and no filter
	// at all; "" is not checked (the kernel's answer depends on privileges
	// or sysctls).
	want := map[string][3]string{
		"getpid":                         {"ok", "ok", "ok"},
		"openat+read+write":              {"ok", "ok", "ok"},
		"exec /bin/true":                 {"ok", "ok", "ok"},
		"unshare(CLONE_NEWUSER)":         {"EPERM", "EINVAL", "EINVAL"},
		"setns(-1)":                      {"EPERM", "EBADF", "EBADF"},
		"mount":                          {"EPERM", "ENOENT", "ENOENT"},
		"clone(CLONE_NEWUSER|CLONE_FS)":  {"EPERM", "EINVAL", "EINVAL"},
		"clone3":                         {"ENOSYS", "EINVAL", "EINVAL"},
		"keyctl":                         {"EPERM", "EPERM", "ENOTSUP"}, // = EOPNOTSUPP
		"add_key":                        {"EPERM", "EPERM", "EFAULT"},
		"bpf":                            {"EPERM", "", ""},
		"perf_event_open":                {"EPERM", "EFAULT", "EFAULT"},
		"userfaultfd":                    {"EPERM", "EPERM", ""},
		"kexec_load":                     {"EPERM", "EPERM", ""},
		"io_uring_setup":                 {"EPERM", "EPERM", ""},
		"ioctl(TCGETS)":                  {"ENOTTY", "ENOTTY", "ENOTTY"},
		"ioctl(TIOCSTI)":                 {"EPERM", "EPERM", "ENOTTY"},
		"ioctl(0x123<<32|TIOCSTI)":       {"EPERM", "EPERM", "ENOTTY"},
		"ioctl(TIOCLINUX)":               {"EPERM", "EPERM", "ENOTTY"},
		"socket(AF_UNIX)":                {"ok", "ok", "ok"},
		"socket(AF_VSOCK)":               {"EPERM", "EPERM", ""},
		"socket(1<<32|AF_INET)":          {"EPERM", "EPERM", "ok"},
		"personality(query)":             {"ok", "ok", "ok"},
		"personality(ADDR_NO_RANDOMIZE)": {"EPERM", "EPERM", "ok"},
		"this thread":                    {"2", "2", "0"},
		"other thread":                   {"0", "0", "0"},
	}
	modes := []string{fmt.Sprintf("%x", DefaultCaps), fmt.Sprintf("%x", DefaultCaps|1<<unix.CAP_SYS_ADMIN), "none"}
	for i, caps := range modes {
		t.Run("caps="+caps, func(t *testing.T) {
			got := runProbes(t, caps)
			if len(got) != len(want) {
				t.Errorf("%d results, want %d: %v", len(got), len(want), got)
			}
			for name, w := range want {
				if w[i] != "" && got[name] != w[i] {
					t.Errorf("%s: %s, want %s", name, got[name], w[i])
				}
			}
		})
	}
}

// BenchmarkProgramInstall measures what the box init pays per command:
// Program(DefaultCaps) and Install on a thread that has no filter yet. Each
// iteration runs on a fresh locked thread (filters stack per thread, and the
// kernel caps a thread's total), so ns/op includes making and ending that
// thread; the "ns/program+install" metric is the time inside it alone.
func BenchmarkProgramInstall(b *testing.B) { benchInstall(b, DefaultCaps) }

// BenchmarkCompileInstall is the same for a capability set that is compiled
// at run time.
func BenchmarkCompileInstall(b *testing.B) { benchInstall(b, DefaultCaps|1<<unix.CAP_SYS_ADMIN) }

func BenchmarkProgram(b *testing.B) {
	for b.Loop() {
		if _, err := Program(DefaultCaps); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	for b.Loop() {
		if _, err := Program(DefaultCaps | 1<<unix.CAP_SYS_ADMIN); err != nil {
			b.Fatal(err)
		}
	}
}

func benchInstall(b *testing.B, caps uint64) {
	type res struct {
		d   time.Duration
		err error
	}
	done := make(chan res)
	var total time.Duration
	for b.Loop() {
		go func() {
			// Exiting locked ends the thread, and its filter with it.
			runtime.LockOSThread()
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				done <- res{err: err}
				return
			}
			start := time.Now()
			prog, err := Program(caps)
			if err == nil {
				err = Install(prog)
			}
			done <- res{time.Since(start), err}
		}()
		r := <-done
		if r.err != nil {
			b.Fatal(r.err)
		}
		total += r.d
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/program+install")
}

// BenchmarkGetppid is the filter's cost on a cheap syscall that it allows
// unconditionally (the kernel's cache skips the program for it; the rest is
// seccomp's entry work), against no filter.
func BenchmarkGetppid(b *testing.B) {
	for _, filtered := range []bool{false, true} {
		b.Run(fmt.Sprintf("filter=%v", filtered), func(b *testing.B) {
			done := make(chan error)
			go func() {
				runtime.LockOSThread() // ends the thread with the filter
				var err error
				if filtered {
					var prog []unix.SockFilter
					prog, err = Program(DefaultCaps)
					if err == nil {
						err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
					}
					if err == nil {
						err = Install(prog)
					}
				}
				if err == nil {
					for b.Loop() {
						unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
					}
				}
				done <- err
			}()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
