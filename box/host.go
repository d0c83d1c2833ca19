package box

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/device"
)

// HostAccount describes the caller as the box should know them. In
// single-ID mode the box user is root, so the account is root's.
func HostAccount(m rootless.Mapping) runtime.Account {
	a := runtime.Account{UID: m.UID, GID: m.GID, Sudo: true}
	if u, err := user.LookupId(strconv.Itoa(m.UID)); err == nil {
		a.Name, a.Home, a.Gecos = u.Username, u.HomeDir, u.Name
	}
	if a.Name == "" {
		a.Name = os.Getenv("USER")
	}
	// $HOME wins over the passwd entry: it is the home the user works in.
	if h := os.Getenv("HOME"); h != "" && filepath.IsAbs(h) {
		a.Home = filepath.Clean(h)
	}
	if g, err := user.LookupGroupId(strconv.Itoa(m.GID)); err == nil {
		a.Group = g.Name
	}
	a.Shell = loginShellOf(m.UID)
	return a
}

// loginShellOf reads the user's login shell from /etc/passwd, then $SHELL.
func loginShellOf(uid int) string {
	if b, err := os.ReadFile("/etc/passwd"); err == nil {
		if sh := runtime.LoginShell(b, uint32(uid)); sh != "" {
			return sh
		}
	}
	if s := os.Getenv("SHELL"); s != "" {
		return s
	}
	return "/bin/bash"
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// HostInfo gathers what the box spec takes from this machine and session.
func HostInfo(m rootless.Mapping) rbox.Host {
	h := rbox.Host{
		Account: HostAccount(m),
		Env:     os.Environ(),
		Exists:  exists,
		Socket: func(p string) bool {
			fi, err := os.Lstat(p)
			return err == nil && fi.Mode().Type() == os.ModeSocket
		},
		Resolve: func(p string) string {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				return r
			}
			return p
		},
	}
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		h.ResolvConf = string(b)
	}
	if exists("/dev/dri") {
		h.Devices = append(h.Devices, "/dev/dri")
	}
	h.NVIDIA, _ = device.FindHost()
	return h
}
