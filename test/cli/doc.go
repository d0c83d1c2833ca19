// Package cli checks devbox's script contract on the real binary
// (DEVBOX_BIN, or one built from this tree): bad input gets one line on
// stderr with a hint and exit 125, never a panic; stdout carries only data;
// the --json outputs keep their documented schema (docs/json.md); nothing
// prompts or waits for input.
package cli
