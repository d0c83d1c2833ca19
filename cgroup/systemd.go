package cgroup

import (
	"context"
	"fmt"
	"os"
	"path"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/devbox-dev/devbox/internal/trace"
)

// Systemd is the part of systemd's manager API that devbox uses. The
// go-systemd connection to the user bus implements it; tests use a fake.
type Systemd interface {
	StartTransientUnitContext(ctx context.Context, name, mode string, props []sdbus.Property, ch chan<- string) (int, error)
	Close()
}

var _ Systemd = (*sdbus.Conn)(nil)

// dialUserBus connects to the caller's systemd user manager. It must run on
// the host (never inside the user namespace: the bus authenticates the
// caller's real uid).
func dialUserBus(ctx context.Context) (Systemd, error) {
	return sdbus.NewUserConnectionContext(ctx)
}

// scopeTimeout bounds the wait for systemd's job.
const scopeTimeout = 30 * time.Second

// ScopeProperties are the properties of a box's transient scope: the caller
// (pid) is its first process, and the subtree is delegated to the caller.
// (containerd's cgroup2.NewSystemd talks to the system bus and never sets
// Delegate, so devbox starts the unit itself.)
func ScopeProperties(id string, pid int) []sdbus.Property {
	return []sdbus.Property{
		sdbus.PropDescription("devbox box " + id),
		sdbus.PropSlice("app.slice"),
		sdbus.PropPids(uint32(pid)),
		{Name: "Delegate", Value: godbus.MakeVariant(true)},
		{Name: "DefaultDependencies", Value: godbus.MakeVariant(false)},
		{Name: "CollectMode", Value: godbus.MakeVariant("inactive-or-failed")},
	}
}

// ScopeName is the unit name of box id's scope.
func ScopeName(id string) string { return Prefix + shortID(id) + ".scope" }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// startUnit starts the transient unit name with props through the user bus
// and waits for systemd's job.
func startUnit(ctx context.Context, h Host, name string, props []sdbus.Property) error {
	ctx, cancel := context.WithTimeout(ctx, scopeTimeout)
	defer cancel()
	trace.Mark("cgroup: dialing the user bus")
	conn, err := h.Dial(ctx)
	if err != nil {
		return fmt.Errorf("connecting to the systemd user bus: %w", err)
	}
	defer conn.Close()
	ch := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(ctx, name, "fail", props, ch); err != nil {
		return fmt.Errorf("starting %s through the systemd user bus: %w", name, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("starting %s through the systemd user bus: job %s", name, res)
		}
	case <-ctx.Done():
		return fmt.Errorf("starting %s through the systemd user bus: %w", name, ctx.Err())
	}
	return nil
}

// startScope moves the caller into a new transient scope with Delegate=yes
// through the user bus and returns the scope's group path.
func startScope(ctx context.Context, h Host, id string) (string, error) {
	name := ScopeName(id)
	if err := startUnit(ctx, h, name, ScopeProperties(id, os.Getpid())); err != nil {
		return "", err
	}
	trace.Mark("cgroup: scope started")
	self, err := h.Self()
	if err != nil {
		return "", err
	}
	if path.Base(self) != name {
		return "", fmt.Errorf("systemd started %s but devbox is in %s", name, self)
	}
	return self, nil
}
