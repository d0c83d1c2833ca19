package runtime

import (
	"errors"
	"os"

	"github.com/devbox-dev/devbox/network"
	"github.com/devbox-dev/devbox/network/child"
)

// boxNetwork is the init's part of user-mode networking (package
// network/child): the handshake starts as the init starts, so the host's
// helper sets up the driver while the init mounts the box, and it is
// finished just before pivot_root, while the drivers can still use host
// paths. A nil *boxNetwork (no user-mode network) does nothing.
type boxNetwork struct {
	s *child.Session
}

// beginNetwork says hello to the network helper when s has a user-mode
// driver; with s.NetEarly it also brings the box's network up, and the
// init does not wait for the helper at all.
func beginNetwork(s *Spec) (*boxNetwork, error) {
	if !network.IsUserMode(s.Net) {
		return nil, nil
	}
	sess, err := child.Begin(os.NewFile(uintptr(s.NetFD), "net"), s.NetEarly)
	if err != nil {
		return nil, err
	}
	return &boxNetwork{s: sess}, nil
}

// configure brings the box's network up; it must run before pivot_root.
func (n *boxNetwork) configure() error {
	if n == nil {
		return nil
	}
	return n.s.Configure()
}

// netFailure is what Init returns when the network could not be set up:
// when the helper gave up, it has already told the user why, and the init
// exits without a message of its own.
func netFailure(err error) (int, error) {
	if errors.Is(err, child.ErrAborted) {
		return 125, nil
	}
	return 125, err
}
