package cmdutil

import (
	"github.com/devbox-dev/devbox/internal/self"
	"os"
	"os/user"
	"strconv"

	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/doctor"
	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/runtime/device"
)

// HostEnv describes the caller for the host checks of `devbox doctor` and
// `devbox version`: who it is, the configuration and store in effect (a
// broken configuration is reported, not fatal) and its id mapping. It
// creates nothing and prints nothing.
func HostEnv(f *Factory) doctor.Env {
	e := doctor.Env{
		Host:       doctor.System(),
		Getenv:     os.Getenv,
		UID:        os.Getuid(),
		GID:        os.Getgid(),
		ConfigPath: config.Path(),
		FindNVIDIA: device.FindHost,
	}
	e.Home, _ = os.UserHomeDir()
	if exe, err := self.Path(); err == nil {
		e.Exe = exe
	}
	e.NSExe, _ = os.Executable()
	cfg := &config.Config{}
	if f.Config != nil {
		if c, err := f.Config(); err != nil {
			e.ConfigErr = err
		} else {
			cfg = c
		}
	}
	flag := ""
	if f.StoreRoot != nil {
		flag = *f.StoreRoot
	}
	if root, err := cfg.StoreRoot(flag); err != nil {
		if e.ConfigErr == nil {
			e.ConfigErr = err
		}
	} else {
		e.StoreRoot = root
	}
	e.Mapping, e.MappingErr = rootless.Detect()
	e.User = e.Mapping.User
	if e.User == "" {
		if u, err := user.LookupId(strconv.Itoa(e.UID)); err == nil {
			e.User = u.Username
		} else {
			e.User = os.Getenv("USER")
		}
	}
	return e
}
