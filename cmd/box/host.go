// Package box implements the persistent-box commands: create, shell,
// exec, ls, inspect, stop, rm and prune. Records and specs live in
// runtime/box; the protocol with a running box in runtime/agent.
package box

import (
	"bufio"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/device"
)

// hostAccount describes the caller as the box should know them. In
// single-ID mode the box user is root, so the account is root's.
func hostAccount(m rootless.Mapping) runtime.Account {
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
	if f, err := os.Open("/etc/passwd"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Split(sc.Text(), ":")
			if len(fl) == 7 && fl[2] == strconv.Itoa(uid) && fl[6] != "" {
				return fl[6]
			}
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

// hostInfo gathers what the box spec takes from this machine and session.
func hostInfo(m rootless.Mapping) rbox.Host {
	h := rbox.Host{
		Account: hostAccount(m),
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
