// Package doctor checks whether a host can run devbox's rootless boxes and
// says, for every problem, the exact command that fixes it.
//
// Run executes the checks in a fixed order (user namespaces, newuidmap,
// subordinate ids, XDG_RUNTIME_DIR, overlayfs, fuse-overlayfs, the store's
// filesystem, cgroups, the user bus, network helpers, the configuration and
// the store) and returns one Result per check: pass, warn (devbox works, in a
// degraded way) or fail (devbox, or a part of it, cannot work until the
// hint is followed). Checks see the machine only through Host and Env, so
// that each is table-tested against fake file contents; System is the real
// host.
//
// Two checks do more than read files: a Prober creates a user namespace
// (with only the caller's id mapped, and a tmpfs mount in it) and mounts an
// overlay with userxattr in the keep-id namespace devbox really uses. The
// overlay probe runs as the stage StageProbe (ProbeMain), which cmd/cli
// routes like every other stage.
//
// The package never imports cobra or cmd/…: cmd/doctor turns flags into an
// Env and prints the results; cmd/version uses Detect for the one-line
// capability summary.
package doctor
