// Package status is the network helper's status pipe (network/host's
// FDStatus), as both of its ends see it. The helper writes JSON lines
// (Line): first how the box's network started (Ready, or Error), at the
// end Down, once nothing of the box's network is left on the host. The
// CLI (network/host.Helper) and a replayed run (internal/warm) read them:
// Read, and Watch, which says when the box's network stopped working
// while the box runs (docs/network.md, "A helper that fails").
//
// It links nothing beyond the standard library's encoding/json, so that
// devbox's front, which replays runs, may use it.
package status
