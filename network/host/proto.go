package host

import "github.com/devbox-dev/devbox/network/host/status"

// What crosses between the CLI (Start) and the helper process (package
// network/host/helper): descriptors, status lines and ports.json.

// Descriptors the helper is started with (Start sets them up).
const (
	FDConn   = 3 // the helper's end of the handshake socketpair
	FDStatus = 4 // the status pipe to the CLI
)

// Status is a line the helper writes to the CLI (package status): first
// how the start went (Ready or Error), and at the end Down, once nothing
// of the box's network is left on the host but the helper's own exit.
type Status = status.Line
