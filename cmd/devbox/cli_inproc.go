//go:build !devbox_embedcli

package main

import (
	"os"

	"github.com/devbox-dev/devbox/cmd/cli"
	"github.com/devbox-dev/devbox/internal/self"
)

// runCLI runs the CLI in this process: a build without the embedded CLI
// (a plain go build, the tests') is front and CLI at once, correct but not
// lean. No front path crosses: the CLI names this program.
func runCLI() int {
	os.Unsetenv(self.Env)
	return cli.Main()
}
