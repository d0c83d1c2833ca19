package box

import (
	"os"
	"path/filepath"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/device"
	"github.com/devbox-dev/devbox/runtime/session"
)

// HostAccount describes the caller as the box should know them
// (session.HostAccount).
func HostAccount(m rootless.Mapping) runtime.Account { return session.HostAccount(m.UID, m.GID) }

// CallerIdent reads the caller's id mapping and account afresh, as a
// session takes them, for the caller record devbox's front serves
// sessions with (session.NoteCaller); ok is false when the ranges did not
// come from the files alone (getsubids).
func CallerIdent() (id session.Ident, ok bool, err error) {
	m, err := rootless.Detect()
	if err != nil {
		return session.Ident{}, false, err
	}
	return session.Ident{UID: m.UID, GID: m.GID, Single: m.Single(), Warning: m.Warning,
		Account: HostAccount(m)}, !m.ViaPath, nil
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
