package box

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/image"
	"github.com/devbox-dev/devbox/image/alias"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/device"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// CreateOptions say what a new box is (devbox create's flags, shell's for
// an implicit create, a box file's entry).
type CreateOptions struct {
	Name    string
	Image   string
	Home    string
	Desktop bool
	// Audio: with Desktop, a sandboxed box gets the audio servers too.
	Audio    bool
	Net      string
	Volumes  []string
	Env      []string
	Hostname string
	Grace    int
	Platform string
	// CapAdd and CapDrop change the bounding set of the box's commands.
	CapAdd, CapDrop []string
	// SecurityOpt are --security-opt values (runtime.ParseSecurity).
	SecurityOpt []string
	// Publish, NoAutoPorts, NoHostLoopback, HostLoopback: the network
	// flags (NetworkFlags).
	Publish        []string
	NoAutoPorts    bool
	NoHostLoopback bool
	HostLoopback   bool
	// Limits are the cgroup limits (cmdutil.AddLimitFlags).
	Limits cgroup.Limits
	// Devices are --device paths (device.Resolve).
	Devices []string
	// NoProvision: no first-start provisioning (package provision).
	NoProvision bool
}

// ParseVolume parses a --volume value, SRC:DST[:ro|rw]: a source
// relative to the current directory is made absolute, and the source is
// resolved once to the directory the box binds at every start.
func ParseVolume(s string) (rbox.Volume, error) {
	parts := strings.Split(s, ":")
	bad := func(why string) (rbox.Volume, error) {
		return rbox.Volume{}, fmt.Errorf("invalid --volume %q: %s (hint: use /host/path:/box/path, ./dir:/box/path or /host/path:/box/path:ro)", s, why)
	}
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want SRC:DST or SRC:DST:ro")
	}
	v := rbox.Volume{Source: parts[0], Target: parts[1]}
	// A relative source is relative to the current directory (./src,
	// ../data, .), as podman takes it.
	if src := v.Source; src == "." || src == ".." || strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
		abs, err := filepath.Abs(src)
		if err != nil {
			return bad(err.Error())
		}
		v.Source = abs
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.ReadOnly = true
		case "rw":
		default:
			return bad("the option must be ro or rw")
		}
	}
	if !filepath.IsAbs(v.Source) || !filepath.IsAbs(v.Target) {
		return bad("the box path must be absolute, and the host path absolute or relative to here (./dir)")
	}
	v.Source, v.Target = filepath.Clean(v.Source), filepath.Clean(v.Target)
	if v.Target == "/" {
		return bad("the box's / cannot be replaced")
	}
	if _, err := os.Stat(v.Source); err != nil {
		return bad("the host path does not exist")
	}
	// Resolved once: the box binds this directory, by identity, at every
	// start, whatever later appears at the path.
	src, dev, ino, err := rbox.Identify(v.Source)
	if err != nil {
		return bad(err.Error())
	}
	v.Source, v.Dev, v.Ino = src, dev, ino
	return v, nil
}

// Create makes the record of a new box, pulling its image when needed. A
// box of that name made meanwhile is returned with ErrExists.
func (m *Manager) Create(o CreateOptions) (*rbox.Record, error) {
	if err := runtime.ValidateName(o.Name); err != nil {
		return nil, inputErrorf("%v", err)
	}
	if o.Audio && (!o.Desktop || o.Home == "") {
		return nil, inputErrorf("--audio goes with --home DIR --desktop (hint: a box with your own home has your audio already)")
	}
	if o.Hostname != "" {
		if err := rbox.CheckHostname(o.Hostname); err != nil {
			return nil, inputErrorf("invalid --hostname: %v", err)
		}
	}
	netMode, err := m.createNetwork(o)
	if err != nil {
		return nil, err
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, inputErrorf("%v", err)
	}
	if _, err := runtime.ParseSecurity(o.CapAdd, o.CapDrop, o.SecurityOpt, true); err != nil {
		return nil, inputErrorf("%v", err)
	}
	// A limit that cannot be applied fails before anything is pulled.
	if _, err := cgroup.Decide(cgroup.DetectHost(), o.Limits); err != nil {
		return nil, err
	}
	var vols []rbox.Volume
	for _, s := range o.Volumes {
		v, err := ParseVolume(s)
		if err != nil {
			return nil, inputErrorf("%v", err)
		}
		vols = append(vols, v)
	}
	var devs []string
	for _, d := range o.Devices {
		p, err := device.Resolve(d)
		if err != nil {
			return nil, inputErrorf("%v", err)
		}
		devs = append(devs, p)
	}
	var homeDev, homeIno uint64
	if o.Home != "" {
		abs, err := filepath.Abs(o.Home)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("creating the box home %s: %w", abs, err)
		}
		if o.Home, homeDev, homeIno, err = rbox.Identify(abs); err != nil {
			return nil, fmt.Errorf("the box home %s: %w", abs, err)
		}
	}
	ref := o.Image
	if ref == "" {
		// One rule for create and shell: without --image, the name
		// must be an alias.
		tab, err := m.aliases()
		if err != nil {
			return nil, err
		}
		if _, isAlias := tab.Lookup(o.Name); !isAlias {
			return nil, NotAliasError(tab, o.Name, "create")
		}
		ref = o.Name
	}
	img, cfg, err := m.Image(ref, o.Platform, "missing")
	if err != nil {
		return nil, err
	}
	spec, err := runtime.NewSpec(cfg, runtime.CreateOptions{Cmd: []string{"sh"}, Env: o.Env, HostEnv: os.Environ()})
	if err != nil {
		return nil, inputErrorf("%v", err)
	}
	chains := store.ChainIDs(cfg.RootFS.DiffIDs)
	r := &rbox.Record{
		ID: runtime.NewID(), Name: o.Name, Image: img.Ref, ImageID: img.ID, Created: time.Now().UTC(),
		Hostname: o.Hostname, Net: netMode, Home: o.Home, HomeDev: homeDev, HomeIno: homeIno, Desktop: o.Desktop, Audio: o.Audio, CapAdd: o.CapAdd, CapDrop: o.CapDrop, SecurityOpt: o.SecurityOpt, Volumes: vols, Env: spec.Env, Grace: o.Grace, Limits: o.Limits,
		Publish: o.Publish, NoAutoPorts: o.NoAutoPorts, Devices: devs, NoProvision: o.NoProvision,
		// A box with a home of its own is a sandbox: no host loopback
		// unless --host-loopback; the record keeps the decision.
		NoHostLoopback: RecordNoHostLoopback(NetworkFlags{HostLoopback: o.HostLoopback,
			NoHostLoopback: o.NoHostLoopback, Sandboxed: o.Home != "" && !IsOwnHome(o.Home)}),
	}
	if r.Hostname == "" {
		r.Hostname = o.Name
	}
	for i := len(chains) - 1; i >= 0; i-- {
		r.Lowers = append(r.Lowers, chains[i].Hex)
	}
	unlock, err := m.bs.Lock("boxes")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if existing, err := m.bs.Get(o.Name); err == nil {
		return existing, ErrExists
	} else if rbox.IsBroken(err) && !errors.Is(err, rbox.ErrNotFound) {
		return nil, err
	}
	if err := m.bs.Create(r); err != nil {
		return nil, err
	}
	return r, nil
}

// ErrExists is Create's error when the name is taken.
var ErrExists = errors.New("box exists")

// NotAliasError refuses NAME without --image when NAME is no alias, for
// create and shell alike.
func NotAliasError(tab alias.Table, name, verb string) error {
	hint := "devbox " + verb + " " + name + " --image IMAGE, or use an alias (devbox aliases)"
	if c := tab.Closest(name); c != "" {
		hint = fmt.Sprintf("did you mean %q? devbox aliases lists the distro names", c)
	}
	what := "no box named %q and it is not an alias"
	if verb == "create" {
		what = "%q is not an alias, and no --image was given"
	}
	return inputErrorf(what+" (hint: %s)", name, hint)
}

// Image finds ref in the store, pulling it as policy says: when missing,
// always (first), or never.
func (m *Manager) Image(ref, platform, policy string) (store.Image, *v1.ConfigFile, error) {
	return m.image(ref, platform, policy, false)
}

// image is Image; quiet pulls without progress.
func (m *Manager) image(ref, platform, policy string, quiet bool) (store.Image, *v1.ConfigFile, error) {
	tab, err := m.aliases()
	if err != nil {
		return store.Image{}, nil, err
	}
	img, lerr := m.st.Lookup(ref)
	if policy == "always" {
		lerr = errors.New("pull always")
	}
	if lerr != nil {
		named, _, err := image.Resolve(ref, tab)
		if err != nil {
			return store.Image{}, nil, err
		}
		if policy != "always" {
			img, lerr = m.st.Lookup(image.FullName(named))
			if lerr != nil && !errors.Is(lerr, store.ErrNotFound) {
				return store.Image{}, nil, lerr // a damaged index: no pull over it
			}
		}
		if local, ok := image.LookupLocal(m.st, ref); ok && lerr != nil {
			img, lerr = local, nil // committed or loaded as localhost/…
		}
		if lerr != nil && policy == "never" {
			return store.Image{}, nil, fmt.Errorf("image %s is not stored and --pull never was given (hint: devbox pull %s)", ref, ref)
		}
		if lerr != nil {
			var plat *v1.Platform
			if platform != "" {
				p, err := image.ParsePlatform(platform)
				if err != nil {
					return store.Image{}, nil, inputErrorf("%v", err)
				}
				plat = &p
			}
			if err := m.pull(ref, plat, quiet); err != nil {
				return store.Image{}, nil, err
			}
			if img, err = m.st.Lookup(image.FullName(named)); err != nil {
				return store.Image{}, nil, err
			}
		}
	}
	h, err := v1.NewHash(img.ID)
	if err != nil {
		return store.Image{}, nil, err
	}
	mf, err := m.st.Manifest(h)
	if err != nil {
		return store.Image{}, nil, err
	}
	cfg, err := m.st.ConfigFile(mf.Config.Digest)
	return img, cfg, err
}

// pull pulls ref with the caller's progress.
func (m *Manager) pull(ref string, plat *v1.Platform, quiet bool) error {
	if m.deps.Pull == nil {
		return fmt.Errorf("image %s is not stored (hint: devbox pull %s)", ref, ref)
	}
	return m.deps.Pull(m.ctx, ref, plat, quiet)
}
