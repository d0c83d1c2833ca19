package box

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/devbox-dev/devbox/boxfile"
	"github.com/devbox-dev/devbox/export"
	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/provision"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// assembleLog is where a box's assemble steps (packages, hooks) write
// their output, in its box directory.
const assembleLog = "assemble.log"

// engine does boxfile's work on boxes with the lifecycle's own code.
type engine struct{ m *Manager }

// Engine is the lifecycle as boxfile.Assemble uses it (devbox assemble,
// shell --devcontainer).
func (m *Manager) Engine() boxfile.Engine { return engine{m} }

func (g engine) Find(name string) (*boxfile.Existing, error) {
	r, err := g.m.bs.Find(name)
	if errors.Is(err, rbox.ErrNotFound) && !rbox.IsBroken(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ex := &boxfile.Existing{ImageID: r.ImageID}
	if r.Problem != nil {
		return ex, nil
	}
	if img, err := g.m.st.Lookup(r.Image); err == nil {
		ex.StoreID = img.ID
	}
	if b, err := g.m.bs.ReadAssembled(r.ID); err == nil {
		ex.Assembled, _ = boxfile.ParseRecord(b) // unreadable: not ours
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return ex, nil
}

func (g engine) Create(s boxfile.Spec) error {
	o := CreateOptions{Name: s.Name, Image: s.Image, Home: s.Home, Desktop: s.Desktop, Audio: s.Audio, Net: s.Network, Volumes: s.Volumes,
		Env: s.Env, Hostname: s.Hostname, Publish: s.Ports, Limits: s.Limits}
	r, err := g.m.Create(o)
	if errors.Is(err, ErrExists) {
		return fmt.Errorf("a box named %q already exists", s.Name)
	}
	if err != nil {
		return err
	}
	if len(s.OnStart) > 0 {
		r.OnStart = s.OnStart
		return g.m.bs.Save(r)
	}
	return nil
}

// running returns box name's record, started.
func (g engine) running(name string) (*rbox.Record, *os.File, error) {
	r, err := g.m.bs.Get(name)
	if err != nil {
		return nil, nil, err
	}
	if err := g.m.Start(r); err != nil {
		return nil, nil, err
	}
	// Opened for each step: never through a link (or into a fifo) that
	// the box planted in its directory meanwhile (docs/security.md).
	log, err := safefile.Append(filepath.Join(g.m.bs.BoxDir(r.ID), assembleLog), 0o600)
	if err != nil {
		return nil, nil, err
	}
	return r, log, nil
}

func (g engine) Install(name string, packages []string) error {
	if len(packages) == 0 {
		return nil
	}
	r, log, err := g.running(name)
	if err != nil {
		return err
	}
	defer log.Close()
	cfg, err := g.m.settings()
	if err != nil {
		return err
	}
	return provision.Install(provision.Options{Box: r.Name, Repos: cfg.Provision.Repos, Log: log,
		Progress: g.m.progress, Runner: g.m.Runner(r, 0, 0)}, packages)
}

func (g engine) Hook(name, user, script string) error {
	r, log, err := g.running(name)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "\n### devbox %s: hook: %s\n", time.Now().Format("15:04:05.000"), script)
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}
	run := g.m.Runner(r, 0, 0)
	if user != "" {
		// As you: your uid and gid, your home.
		acct := HostAccount(g.m.ids)
		run = g.m.Runner(r, acct.UID, acct.GID)
		env[1] = "HOME=" + acct.Home
	}
	code, err := run.Run([]string{"/bin/sh", "-c", script}, env, log, log)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit %d (log: %s)", code, log.Name())
	}
	return nil
}

func (g engine) Export(name, bin, app string) error {
	r, err := g.m.bs.Get(name)
	if err != nil {
		return err
	}
	b, err := export.ForRecord(r, g.m.bs.BoxDir(r.ID), g.m.st.Root, g.m.st.LayersDir())
	if err != nil {
		return err
	}
	b.Warn = func(msg string) { g.m.warn("%s", msg) }
	unlock, err := g.m.bs.Lock("export-" + r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if bin != "" {
		_, err = b.Bin(bin, "")
	} else {
		_, err = b.App(app)
	}
	if err != nil {
		return fmt.Errorf("box %s: exporting %s%s: %w", name, bin, app, err)
	}
	return nil
}

func (g engine) Save(name string, rec boxfile.Record) error {
	r, err := g.m.bs.Get(name)
	if err != nil {
		return err
	}
	b, err := boxfile.MarshalRecord(rec)
	if err != nil {
		return err
	}
	return g.m.bs.SaveAssembled(r.ID, b)
}

func (g engine) Remove(name string) error {
	r, err := g.m.bs.Find(name)
	if err != nil {
		return err
	}
	return g.m.Remove(r, true)
}
