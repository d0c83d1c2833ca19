// Command devbox is devbox's front: the small program users run. It serves
// the commands that must answer in a few milliseconds itself — a session in
// a running box (shell.go) — in ordinary code called from main, and hands
// everything else to the full CLI (cmd/cli): a release build embeds the
// CLI's program (cmd/devbox-cli, internal/libexec) and executes it with the
// same arguments and environment plus the front's path (internal/self); a
// plain `go build` links the CLI and calls it in-process (cli_inproc.go).
// docs/architecture.md, "Front", says what crosses between the two.
//
// The front links only light packages (test/imports lists them): a Go
// program pays for every package it links at every start.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"
	"slices"

	"github.com/devbox-dev/devbox/hostexec"
	"github.com/devbox-dev/devbox/internal/self"
	"github.com/devbox-dev/devbox/internal/trace"
	"github.com/devbox-dev/devbox/internal/warm"
)

// fastPaths are the commands the front serves itself, tried in order with
// the whole argv. Each reports whether it handled the command (then with
// its exit code); when none did, the CLI runs it, exactly as if there were
// no front. A fast path hands over before it has printed anything or
// changed anything.
var fastPaths = []func(argv []string) (code int, handled bool){
	replayFast,
	sessionFast,
}

// replayFast runs a repeated `devbox run` whose inputs are unchanged from
// its record, through a warm holder (internal/warm). Only a command line
// with "run" in it can have a record: no other looks for one.
func replayFast(argv []string) (int, bool) {
	if !slices.Contains(argv[1:], "run") {
		return 0, false
	}
	return warm.TryReplay(argv, os.Environ())
}

func main() {
	trace.Mark("front")
	if os.Getenv(self.StageEnv) == "" {
		if hostexec.IsClient(os.Args[0]) {
			// devbox-host in a dev box whose devbox-host is devbox itself.
			os.Exit(hostexec.ClientMain())
		}
		for _, fast := range fastPaths {
			if code, ok := fast(os.Args); ok {
				os.Exit(code)
			}
		}
	}
	os.Exit(runCLI())
}
