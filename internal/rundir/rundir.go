// Package rundir locates devbox's per-user runtime directory
// ($XDG_RUNTIME_DIR/devbox): running boxes' sockets, the embedded programs,
// the front's session tickets. It is light (the front links it).
package rundir

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Base returns the per-user runtime directory for running boxes.
func Base() (string, error) {
	d := os.Getenv("XDG_RUNTIME_DIR")
	if d != "" && filepath.IsAbs(d) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Getuid() {
				// Another user who can write it can make devbox's
				// directory there first, and swap a box's agent socket
				// for their own (TestEscapeFrontRuntimeDirWritableByOthers).
				if fi.Mode().Perm()&0o022 != 0 {
					return "", fmt.Errorf("XDG_RUNTIME_DIR %s can be written by other users, who could stand in for your boxes (hint: chmod 700 %s; run devbox doctor)", d, d)
				}
				return private(filepath.Join(d, "devbox"))
			}
			return "", fmt.Errorf("XDG_RUNTIME_DIR %s belongs to another user (hint: you probably switched users with su or sudo; log in as yourself, or use machinectl shell %s@; run devbox doctor)", d, os.Getenv("USER"))
		}
	}
	// No session runtime directory (ssh without logind, containers):
	// fall back to a private directory in /tmp.
	d = filepath.Join(os.TempDir(), "devbox-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("creating runtime directory: %w", err)
	}
	if fi, err := os.Lstat(d); err != nil || !fi.IsDir() || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("runtime directory %s is not a private directory of yours (hint: set XDG_RUNTIME_DIR; run devbox doctor)", d)
	}
	return d, nil
}

// private returns dir, devbox's directory in XDG_RUNTIME_DIR, when it is
// missing or a directory of the user's that no one else may write: another
// user who made it while XDG_RUNTIME_DIR was open to all keeps it, and a
// process of theirs whose working directory is in it could still swap a
// box's directory there for one with their own agent.sock after the user
// closed XDG_RUNTIME_DIR (TestEscapeAgentSocketStandIn).
func private(dir string) (string, error) {
	var st syscall.Stat_t
	err := syscall.Lstat(dir, &st)
	if err == syscall.ENOENT {
		return dir, nil
	}
	if err != nil {
		return "", fmt.Errorf("devbox's runtime directory: %w", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&0o022 != 0 {
		return "", fmt.Errorf("devbox's runtime directory %s is not a directory of yours that only you can write; another user could stand in for your boxes (hint: mv %s %s.bad, then run devbox again)", dir, dir, dir)
	}
	return dir, nil
}

// Box is the runtime directory of box id under base: its agent socket,
// init.pid and log.
func Box(base, id string) string { return filepath.Join(base, id[:min(len(id), 16)]) }

// AgentSocket is where box id's agent listens.
func AgentSocket(base, id string) string { return filepath.Join(Box(base, id), "agent.sock") }
