package doctor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/devbox-dev/devbox/rootless"
	"golang.org/x/sys/unix"
)

// StageProbe is the stage that tries mounts inside the namespaces;
// cmd/cli routes it to ProbeMain.
const StageProbe = "doctor-probe"

// probeTimeout bounds one probe; a hung helper must not hang devbox doctor.
const probeTimeout = 15 * time.Second

// NewProber returns the real prober for the caller's mapping.
func NewProber(m rootless.Mapping) Prober { return nsProber{m: m} }

type nsProber struct{ m rootless.Mapping }

func (p nsProber) Userns() error {
	dir, err := os.MkdirTemp("", "devbox-doctor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Only the caller's own ids: this tests the kernel, not newuidmap.
	single := rootless.Mapping{UID: p.m.UID, GID: p.m.GID, User: p.m.User}
	return runProbe(single, "userns", dir)
}

func (p nsProber) Overlay(parent string) error {
	dir, err := os.MkdirTemp(parent, "doctor-overlay-")
	if err != nil {
		return fmt.Errorf("creating a directory to try it in: %w", err)
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"kept", "removed"} {
		if err := os.WriteFile(filepath.Join(dir, "lower", f), []byte(f), 0o644); err != nil {
			return err
		}
	}
	return runProbe(p.m, "overlay", dir)
}

// runProbe runs the probe stage in the namespace and returns its complaint.
func runProbe(m rootless.Mapping, what, dir string) error {
	var stderr bytes.Buffer
	p, err := rootless.Start(rootless.Spec{
		Stage:      StageProbe,
		Args:       []string{what, dir},
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Namespaces: rootless.Namespaces{Mount: true},
		Mapping:    m,
		Stderr:     &stderr,
	})
	if err != nil {
		return err
	}
	timer := time.AfterFunc(probeTimeout, func() { _ = p.Signal(syscall.SIGKILL) })
	code, err := p.Wait()
	timer.Stop()
	if err != nil {
		return err
	}
	if code != 0 {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = fmt.Sprintf("the probe exited with status %d", code)
		}
		return errors.New(msg)
	}
	return nil
}

// ProbeMain is the probe stage: argv is [what dir]. It runs as uid 0 of its
// own user and mount namespaces and reports a failure on stderr.
func ProbeMain() int {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: doctor-probe userns|overlay DIR")
		return 2
	}
	var err error
	switch dir := os.Args[2]; os.Args[1] {
	case "userns":
		err = probeUserns(dir)
	case "overlay":
		err = probeOverlay(dir)
		// What the mount created belongs to ids only this namespace can
		// remove.
		for _, d := range []string{"upper", "work", "merged", "lower"} {
			_ = os.RemoveAll(filepath.Join(dir, d))
		}
	default:
		err = fmt.Errorf("unknown probe %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func probeUserns(dir string) error {
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16k"); err != nil {
		return fmt.Errorf("mounting a tmpfs in the new namespace: %w", err)
	}
	return unix.Unmount(dir, unix.MNT_DETACH)
}

func probeOverlay(dir string) error {
	j := func(s string) string { return filepath.Join(dir, s) }
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", j("lower"), j("upper"), j("work"))
	if err := unix.Mount("overlay", j("merged"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount -t overlay -o userxattr: %w", err)
	}
	defer unix.Unmount(j("merged"), unix.MNT_DETACH)
	if err := os.WriteFile(j("merged/new"), []byte("new"), 0o644); err != nil {
		return fmt.Errorf("writing through the overlay: %w", err)
	}
	if err := os.Remove(j("merged/removed")); err != nil {
		return fmt.Errorf("removing a lower file through the overlay (a whiteout): %w", err)
	}
	if b, err := os.ReadFile(j("merged/kept")); err != nil || string(b) != "kept" {
		return fmt.Errorf("reading a lower file through the overlay: %v", err)
	}
	if _, err := os.Stat(j("upper/new")); err != nil {
		return fmt.Errorf("the overlay did not write to its upper directory: %w", err)
	}
	if _, err := os.Stat(j("lower/removed")); err != nil {
		return fmt.Errorf("the overlay changed its lower directory: %w", err)
	}
	return nil
}
