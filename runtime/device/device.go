// Package device decides which host devices a box gets: the ones a user
// passes with --device (checked here: a character or block device under
// /dev that the user can open, or a directory of such devices like
// /dev/dri or /dev/bus/usb), and the NVIDIA driver's device nodes,
// libraries and programs, found the way the driver's container toolkit
// finds them (nvidia.go). It runs on the host only.
package device

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// dirs are the directories of devices --device accepts whole: each holds
// only device nodes (and directories of them) on a normal system.
var dirs = []string{"/dev/bus/usb", "/dev/dri", "/dev/snd", "/dev/input", "/dev/vfio", "/dev/v4l"}

// CheckPath checks a device path as a record keeps it: absolute, clean,
// below /dev (not /dev itself), without control characters, and not one of
// the trees the box makes itself (/dev/pts, /dev/shm, /dev/mqueue).
func CheckPath(p string) error {
	switch {
	case !filepath.IsAbs(p) || filepath.Clean(p) != p:
		return fmt.Errorf("device %q is not a clean absolute path", p)
	case !strings.HasPrefix(p, "/dev/"):
		return fmt.Errorf("device %q is not below /dev", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("device %q contains control characters", p)
	}
	for _, own := range []string{"/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/fd", "/dev/ptmx"} {
		if p == own || strings.HasPrefix(p, own+"/") {
			return fmt.Errorf("device %q is part of the box's own /dev", p)
		}
	}
	return nil
}

// Resolve checks a --device argument on this host and returns the path the
// box binds: symbolic links resolved (/dev/serial/by-id/… names a ttyUSB),
// the result a character or block device below /dev that the caller can
// read and write, or one of the device directories (dirs).
func Resolve(arg string) (string, error) {
	bad := func(format string, a ...any) (string, error) {
		return "", fmt.Errorf("--device %s: %s", arg, fmt.Sprintf(format, a...))
	}
	if !filepath.IsAbs(arg) {
		return bad("not an absolute path (hint: --device /dev/kvm)")
	}
	p, err := filepath.EvalSymlinks(filepath.Clean(arg))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return bad("no such device on this host")
		}
		return bad("%v", err)
	}
	if err := CheckPath(p); err != nil {
		return bad("%v", err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return bad("%v", err)
	}
	switch {
	case fi.IsDir():
		for _, d := range dirs {
			if p == d {
				return p, nil
			}
		}
		return bad("a directory that is not one of %s", strings.Join(dirs, ", "))
	case fi.Mode()&fs.ModeDevice == 0:
		return bad("not a device")
	}
	if err := unix.Access(p, unix.R_OK|unix.W_OK); err != nil {
		return bad("you cannot open it (%v) (hint: add yourself to its group: ls -l %s shows it, then sudo usermod -aG GROUP $USER and log in again)", err, p)
	}
	return p, nil
}
