package box

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/runtime"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// A kept run (--name or --keep) is a box like one made by devbox create:
// its record is written before the command runs, so the name is taken at
// once, the box is listed, and afterwards shell, exec, inspect, rm and
// prune reach it. It stays a sandbox: its home is an empty directory of
// its own (in the box directory), never the user's.

// keepOptions say what a kept run's box keeps: the run's flags.
type keepOptions struct {
	Name                         string // --name; "" for --keep
	Net                          string // --net as given
	CapAdd, CapDrop, SecurityOpt []string
	Limits                       cgroup.Limits
	Publish                      []string
	HostLoopback                 bool
}

// keptName is the name of a kept run's box: --name, or run-<id> for --keep.
func keptName(name, id string) string {
	if name != "" {
		return name
	}
	return "run-" + id[:8]
}

// OpenStore opens the box store of image store st.
func OpenStore(st *store.Store) (*rbox.Store, error) {
	return rbox.Open(st.ContainersDir(), filepath.Join(st.Root, "locks"))
}

// errNameTaken refuses a second run --name NAME: docker refuses a name in
// use too, and re-running in the existing box is what shell/exec are for.
func errNameTaken(name string) error {
	return inputErrorf("a box named %q already exists (hint: devbox exec %s -- COMMAND runs in it; devbox rm %s removes it first)", name, name, name)
}

// checkName fails early, before anything starts, when name is taken.
func checkName(bs *rbox.Store, name string) error {
	if _, err := bs.Find(name); err == nil {
		return errNameTaken(name)
	} else if rbox.IsBroken(err) && !errors.Is(err, rbox.ErrNotFound) {
		return err
	}
	return nil
}

// keepAsBox writes the record that makes run spec (box directory
// spec.ContainerDir) the box name; cfg is the configuration's [network].
func keepAsBox(bs *rbox.Store, cfg network.Config, name string, opts keepOptions, spec *runtime.Spec, img store.Image) error {
	mode := opts.Net
	if mode == "" {
		mode = DefaultMode(cfg, DefaultNet)
	}
	home := filepath.Join(spec.ContainerDir, "home")
	if err := os.Mkdir(home, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating the home of box %s: %w", name, err)
	}
	home, dev, ino, err := rbox.Identify(home)
	if err != nil {
		return fmt.Errorf("the home of box %s: %w", name, err)
	}
	r := &rbox.Record{
		ID: spec.ID, Name: name, Image: img.Ref, ImageID: img.ID, Created: time.Now().UTC(),
		Hostname: spec.Hostname, Net: network.Canonical(mode), Home: home, HomeDev: dev, HomeIno: ino,
		CapAdd: opts.CapAdd, CapDrop: opts.CapDrop, SecurityOpt: opts.SecurityOpt,
		Env: spec.Env, Limits: opts.Limits, Publish: opts.Publish, NoAutoPorts: true,
		NoHostLoopback: !opts.HostLoopback,
	}
	if rbox.CheckHostname(r.Hostname) != nil {
		r.Hostname = name
	}
	for _, l := range spec.Lowers {
		r.Lowers = append(r.Lowers, filepath.Base(l))
	}
	unlock, err := bs.Lock("boxes")
	if err != nil {
		return err
	}
	defer unlock()
	if err := checkName(bs, name); err != nil {
		return err
	}
	return bs.Create(r)
}

// runName is the name a run shows in devbox ls --all: a kept run's box
// name, "" for an ephemeral one.
func runName(keep bool, name, id string) string {
	if keep || name != "" {
		return keptName(name, id)
	}
	return ""
}
