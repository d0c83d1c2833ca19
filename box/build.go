package box

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox-dev/devbox/boxfile"
	"github.com/devbox-dev/devbox/image"
	icommit "github.com/devbox-dev/devbox/image/commit"
	"github.com/devbox-dev/devbox/image/store"
	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/provision"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// buildHomePrefix starts the names of build boxes' homes, in $TMPDIR.
const buildHomePrefix = "devbox-build-home-"

// buildGrace keeps a build box up between its steps (it is stopped for
// the commit and removed after).
const buildGrace = 3600

// Builder does boxfile.Build's work with the lifecycle's own code: the
// temporary boxes of devbox build, their log, homes and locks.
type Builder struct {
	m *Manager
	// log (at logPath) is the packages' and hooks' output, made anew once
	// a box is made: a cached build leaves the last one alone.
	logPath  string
	log      *os.File
	progress io.Writer         // the package managers' progress lines
	homes    map[string]string // the temporary boxes' homes, by box name
	// held are the build locks of the temporary boxes, by name: a box
	// whose lock is free belongs to a build that was killed (sweep).
	held map[string]func()
	// HostLoopback lets the temporary box reach the host's 127.0.0.1 as
	// host.devbox.internal (devbox build --host-loopback): a package
	// repository or proxy there. Off by default: the box file's hooks run
	// in that box too, and a cloned repository's must not reach the
	// services listening on the user's loopback.
	HostLoopback bool
}

// buildLock is the lock a build holds while its temporary box name lives.
func buildLock(name string) string { return "build-" + name }

func (b *Builder) Base(ref, policy string) (boxfile.Base, error) {
	img, cfg, err := b.m.image(ref, "", policy, b.progress == io.Discard)
	if err != nil {
		return boxfile.Base{}, err
	}
	plat := cfg.OS + "/" + cfg.Architecture
	if cfg.Variant != "" {
		plat += "/" + cfg.Variant
	}
	return boxfile.Base{Ref: img.Ref, ID: img.ID, Platform: plat, Env: cfg.Config.Env}, nil
}

func (b *Builder) Built(ref string) (string, string, bool, error) {
	img, err := b.m.st.Lookup(ref)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	// The label is read from the stored config, checked against its
	// digest; anything odd is an image to build again.
	h, err := v1.NewHash(img.ID)
	if err != nil {
		return "", "", false, nil
	}
	m, err := b.m.st.Manifest(h)
	if err != nil {
		return "", "", false, nil
	}
	cfg, err := b.m.st.ConfigFile(m.Config.Digest)
	if err != nil {
		return "", "", false, nil
	}
	key := cfg.Config.Labels[boxfile.LabelBuildKey]
	if !boxfile.ValidKey(key) {
		return "", "", false, nil
	}
	return key, img.ID, true, nil
}

func (b *Builder) Recorded(key string) (string, bool) { return b.m.st.BuiltImage(key) }

func (b *Builder) Record(key, id string) error { return b.m.st.RecordBuild(key, id) }

// buildBoxName is a fresh name for a temporary box of box file box name.
func buildBoxName(name string) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	if len(name) > 48 {
		name = name[:48]
	}
	return name + "-build-" + hex.EncodeToString(r[:])
}

func (b *Builder) Start(s boxfile.Spec, base boxfile.Base) (string, error) {
	if b.log == nil {
		f, err := openBuildLog(b.logPath)
		if err != nil {
			return "", fmt.Errorf("opening the build log: %w", err)
		}
		b.log = f
	}
	// A home of its own, empty and outside the store: the box is a
	// sandbox, your home is not in it and cannot end up in the image.
	home, err := os.MkdirTemp("", buildHomePrefix)
	if err != nil {
		return "", err
	}
	o := CreateOptions{Name: buildBoxName(s.Name), Image: base.Ref, Home: home, Grace: buildGrace, NoProvision: true,
		HostLoopback: b.HostLoopback, NoHostLoopback: !b.HostLoopback}
	// Held before the box exists, until it is gone.
	unlock, forget, held, err := b.m.bs.TryLock(buildLock(o.Name))
	if err == nil && held {
		err = fmt.Errorf("the name %s is taken (hint: build again)", o.Name)
	}
	if err != nil {
		os.Remove(home)
		return "", err
	}
	b.held[o.Name] = func() { forget(); unlock() }
	r, err := b.m.Create(o)
	if err != nil {
		os.Remove(home)
		b.release(o.Name)
		return "", err
	}
	b.homes[r.Name] = home
	if r.ImageID != base.ID {
		return r.Name, fmt.Errorf("image %s changed while the build started (hint: build again)", base.Ref)
	}
	if err := b.m.Start(r); err != nil {
		return r.Name, err
	}
	return r.Name, nil
}

// running returns build box name's record, started.
func (b *Builder) running(name string) (*rbox.Record, error) {
	r, err := b.m.bs.Get(name)
	if err != nil {
		return nil, err
	}
	return r, b.m.Start(r)
}

// interrupted returns context.Canceled once the build was interrupted
// (Ctrl-C also ends the command running in the box), else err: the
// signal may reach the command's runner before it cancels the context.
func (b *Builder) interrupted(err error) error {
	if err != nil && (b.m.ctx.Err() != nil || errors.Is(err, ErrInterrupted)) {
		return context.Canceled
	}
	return err
}

func (b *Builder) Install(box string, packages []string) error {
	r, err := b.running(box)
	if err != nil {
		return err
	}
	cfg, err := b.m.settings()
	if err != nil {
		return err
	}
	fmt.Fprintf(b.log, "\n### devbox build %s: packages: %s\n", time.Now().Format("15:04:05.000"), strings.Join(packages, " "))
	return b.interrupted(provision.Install(provision.Options{Box: r.Name, Repos: cfg.Provision.Repos, Log: b.log,
		Progress: b.progress, Runner: b.m.Runner(r, 0, 0)}, packages))
}

func (b *Builder) Run(box string, env []string, script string) (int, error) {
	r, err := b.running(box)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(b.log, "\n### devbox build %s: on_create: %s\n", time.Now().Format("15:04:05.000"), script)
	env = boxfile.MergeEnv([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}, env)
	code, err := b.m.Runner(r, 0, 0).Run([]string{"/bin/sh", "-c", script}, env, b.log, b.log)
	return code, b.interrupted(err)
}

func (b *Builder) Commit(box string, c boxfile.Commit) (string, error) {
	r, unlock, err := b.m.LockStopped(box, "build", true)
	if err != nil {
		return "", err
	}
	defer unlock()
	base, err := v1.NewHash(r.ImageID)
	if err != nil {
		return "", fmt.Errorf("box %s: its record names no image digest", r.Name)
	}
	req, err := icommit.BoxRequest(b.m.bs.BoxDir(r.ID), b.m.layerDirs(r))
	if err != nil {
		return "", err
	}
	lim, err := b.m.deps.PullLimits()
	if err != nil {
		return "", err
	}
	var hist []v1.History
	for i, s := range c.Steps {
		hist = append(hist, v1.History{CreatedBy: s, EmptyLayer: i < len(c.Steps)-1})
	}
	res, err := icommit.Commit(b.m.ctx, b.m.st, icommit.Options{
		Ref: c.Ref, BaseID: base, Read: req, Mapping: b.m.Mapping(),
		Unpack: b.m.deps.Unpacker(), Remove: b.m.deps.Remover(context.WithoutCancel(b.m.ctx)), Limits: lim,
		History: hist,
		Edit: func(cc *v1.Config) error {
			cc.Env = c.Env
			if cc.Labels == nil {
				cc.Labels = map[string]string{}
			}
			for k, v := range c.Labels {
				cc.Labels[k] = v
			}
			return nil
		},
	})
	if err != nil {
		return "", err
	}
	return res.ID.String(), nil
}

// layerDirs are box r's lower layers as directories of the store.
func (m *Manager) layerDirs(r *rbox.Record) []string {
	var out []string
	for _, l := range r.Lowers {
		out = append(out, filepath.Join(m.st.LayersDir(), l))
	}
	return out
}

func (b *Builder) Discard(box string) error {
	// Also after Ctrl-C: the removal runs to its end.
	ce := b.m.WithContext(context.WithoutCancel(b.m.ctx))
	r, err := b.m.bs.Find(box)
	if err == nil {
		err = ce.Remove(r, true)
	} else if errors.Is(err, rbox.ErrNotFound) && !rbox.IsBroken(err) {
		err = nil
	}
	if home := b.homes[box]; home != "" {
		if rerr := os.RemoveAll(home); rerr != nil {
			// Files of the box's other users: removed in the namespace.
			rerr = ce.Remover()([]string{home})
			if err == nil && rerr != nil {
				err = rerr
			}
		}
		delete(b.homes, box)
	}
	if err == nil {
		b.release(box)
	}
	return err
}

// release lets go of the build lock of temporary box name.
func (b *Builder) release(name string) {
	if done := b.held[name]; done != nil {
		done()
		delete(b.held, name)
	}
}

// Sweep removes the temporary boxes (and their homes) of builds that were
// killed: their build lock exists and is free.
func (b *Builder) Sweep(removing func(name string)) {
	all, err := b.m.bs.List()
	if err != nil {
		return
	}
	for _, r := range all {
		if !strings.Contains(r.Name, "-build-") || !b.m.bs.HasLock(buildLock(r.Name)) {
			continue
		}
		unlock, forget, held, err := b.m.bs.TryLock(buildLock(r.Name))
		if err != nil || held {
			continue // a build in progress
		}
		removing(r.Name)
		if err := b.m.Remove(r, true); err != nil {
			b.m.warn("%v (hint: devbox rm -f %s)", err, r.Name)
		} else {
			if h := r.Home; strings.HasPrefix(filepath.Base(h), buildHomePrefix) && filepath.Dir(h) == filepath.Clean(os.TempDir()) {
				if os.RemoveAll(h) != nil {
					_ = b.m.Remover()([]string{h})
				}
			}
			forget()
		}
		unlock()
	}
	// The locks of builds whose box is gone (removed by hand).
	names := map[string]bool{}
	for _, r := range all {
		names[r.Name] = true
	}
	locks, _ := filepath.Glob(filepath.Join(b.m.bs.LocksDir, buildLock("*")+".lock"))
	for _, l := range locks {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(l), buildLock("")), ".lock")
		if names[name] {
			continue
		}
		if unlock, forget, held, err := b.m.bs.TryLock(buildLock(name)); err == nil && !held {
			forget()
			unlock()
		}
	}
}

func (b *Builder) Push(ref, dest string) (string, error) {
	d, err := name.ParseReference(dest)
	if err != nil {
		return "", inputErrorf("invalid --push destination %q: %v", dest, err)
	}
	regs, err := b.m.deps.Registries()
	if err != nil {
		return "", err
	}
	res, err := image.Push(b.m.ctx, b.m.st, ref, d, image.Options{Registries: regs})
	if err != nil {
		return "", err
	}
	return res.Dest, nil
}

// BuildLogPath is where the log of building box file box name goes:
// $XDG_STATE_HOME/devbox/build/NAME.log.
func BuildLogPath(box string) (string, error) {
	dir, err := StateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "build", box+".log"), nil
}

// StateDir is devbox's directory of state of the user's:
// $XDG_STATE_HOME/devbox (~/.local/state/devbox).
func StateDir() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "devbox"), nil
}

// openBuildLog makes the build log at p anew.
func openBuildLog(p string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(p)
	return safefile.Create(p, 0, 0o600)
}

// NewBuilder returns the Builder of one box file entry: its log at
// logPath (made anew once a box is made), package managers' progress on
// progress (io.Discard: quiet, pulls too).
func (m *Manager) NewBuilder(logPath string, progress io.Writer) *Builder {
	return &Builder{m: m, logPath: logPath, progress: progress, homes: map[string]string{}, held: map[string]func(){}}
}

// Close closes the build log.
func (b *Builder) Close() {
	if b.log != nil {
		b.log.Close()
	}
}
