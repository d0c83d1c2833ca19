//go:build !devbox_embedinit

package cli

import (
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/network/host/helper"
)

// A build without the embedded programs (internal/libexec) runs the network
// helper as a stage of its own; with them, devbox links none of its code
// (gVisor's network stack included).
func netStage(stage string) (func() int, bool) {
	return helper.Main, stage == nethost.Stage
}
