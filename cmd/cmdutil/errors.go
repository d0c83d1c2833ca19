// Package cmdutil holds what devbox's commands share: the Factory that gives
// them their dependencies, typed errors, and the documented exit codes.
package cmdutil

import (
	"errors"
	"fmt"
)

// Exit codes, documented in docs/exit-codes.md and `devbox help exit-codes`.
const (
	ExitOK           = 0
	ExitChecksFailed = 1   // devbox doctor: a check failed; devbox verify: a problem found (or left)
	ExitStepFailed   = 1   // devbox build: a package install or on_create hook failed in the build box
	ExitFailure      = 125 // devbox itself failed (bad flags, pull, store, namespaces)
	ExitNotRunnable  = 126 // the command exists but cannot be executed
	ExitNotFound     = 127 // the command was not found in the box
	ExitInterrupted  = 130 // devbox was interrupted (SIGINT) before a command ran
	ExitOOM          = 137 // the kernel OOM-killed a process of a box over its --memory
)

// FlagError is a usage mistake; the CLI shows the usage hint with it.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// ExitError passes a wrapped command's exit status through unchanged; it
// prints nothing.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// StatusError is an error printed like any other that exits with Code
// instead of ExitFailure.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// SilentError fails with ExitFailure after the command already explained
// itself.
var SilentError = errors.New("silent error")

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return ExitFailure
}
