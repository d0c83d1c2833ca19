package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/devbox-dev/devbox/network"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// CreateOptions are the user's choices for a new box, from the CLI.
type CreateOptions struct {
	Name     string
	Cmd      []string // replaces the image's Cmd when non-empty
	Env      []string // KEY=VALUE overrides, applied last
	HostEnv  []string // the caller's environment: only TERM (and KEY-only --env entries) are taken from it
	Workdir  string
	User     string
	Hostname string
	Net      string
	Terminal bool
	Remove   bool
	// Host files copied into the box's /etc.
	ResolvConf string
	// Devices are host devices bound at the same path (--device, checked
	// by the caller with device.Resolve).
	Devices []string
}

// Hostname is a box's hostname: --hostname, else its name, else "devbox".
func Hostname(flag, name string) string {
	switch {
	case flag != "":
		return flag
	case name != "":
		return name
	}
	return "devbox"
}

// validName reports whether name matches ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$
// (written out: a package-level regexp costs every devbox process, the box
// init included, its compilation at start-up).
func validName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// ValidateName checks a user-chosen box name.
func ValidateName(name string) error {
	if !validName(name) {
		return fmt.Errorf("invalid box name %q (hint: use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters)", name)
	}
	return nil
}

// NewID returns a fresh random box id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewSpec computes the box spec from the image config and the options. It
// is pure: the caller fills in ID, Lowers and ContainerDir.
func NewSpec(cfg *v1.ConfigFile, o CreateOptions) (*Spec, error) {
	c := cfg.Config
	args := append([]string{}, c.Entrypoint...)
	if len(o.Cmd) > 0 {
		args = append(args, o.Cmd...)
	} else {
		args = append(args, c.Cmd...)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("the image has no command to run (hint: give one after --, e.g. devbox run IMAGE -- sh)")
	}
	env, err := mergeEnv(c.Env, o.HostEnv, o.Env)
	if err != nil {
		return nil, err
	}
	cwd := c.WorkingDir
	if o.Workdir != "" {
		if !strings.HasPrefix(o.Workdir, "/") {
			return nil, fmt.Errorf("invalid --workdir %q: must be an absolute path inside the box", o.Workdir)
		}
		cwd = o.Workdir
	}
	if cwd == "" {
		cwd = "/"
	}
	user := c.User
	if o.User != "" {
		user = o.User
	}
	net := o.Net
	if net == "" {
		net = "none"
	}
	if net != "none" && net != "host" && !network.IsUserMode(net) {
		if err := network.ValidateMode(o.Net); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("--net %s was not resolved to a driver (this is a bug)", o.Net)
	}
	host := Hostname(o.Hostname, o.Name)
	if len(host) > 64 {
		return nil, fmt.Errorf("invalid --hostname %q: at most 64 characters", host)
	}
	s := &Spec{
		Version:  SpecVersion,
		Name:     o.Name,
		Args:     args,
		Env:      env,
		Cwd:      cwd,
		User:     user,
		Terminal: o.Terminal,
		Hostname: host,
		Net:      net,
		Remove:   o.Remove,
		Hosts: fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n",
			host),
		ResolvConf: o.ResolvConf,
	}
	for _, d := range o.Devices {
		s.Mounts = append(s.Mounts, Mount{Source: d, Target: d})
	}
	return s, nil
}

// mergeEnv builds the box environment: the image's, then TERM from the
// host, then the user's overrides. A bare KEY override copies the host's
// value. Nothing else from the host leaks in.
func mergeEnv(image, host, overrides []string) ([]string, error) {
	var keys []string
	vals := map[string]string{}
	set := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	hostVal := func(k string) (string, bool) {
		for _, kv := range host {
			if hk, v, ok := strings.Cut(kv, "="); ok && hk == k {
				return v, true
			}
		}
		return "", false
	}
	for _, kv := range image {
		if strings.Contains(kv, "=") {
			set(kv)
		}
	}
	if _, ok := vals["PATH"]; !ok {
		set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	for _, k := range []string{"TERM", "COLORTERM"} {
		if v, ok := hostVal(k); ok {
			set(k + "=" + v)
		}
	}
	for _, kv := range overrides {
		k, _, hasVal := strings.Cut(kv, "=")
		if k == "" || strings.ContainsAny(k, " \t\n\x00") {
			return nil, fmt.Errorf("invalid --env %q (hint: use KEY=VALUE, or KEY to pass the host's value)", kv)
		}
		if !hasVal {
			if v, ok := hostVal(k); ok {
				set(k + "=" + v)
			}
			continue
		}
		set(kv)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}
