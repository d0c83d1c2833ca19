// Package cgroup gives a box its own cgroup v2 and applies resource limits
// to it, without privilege.
//
// The cgroup is always set up on the host, by the CLI, before the box's
// processes exist: D-Bus does not work from inside the user namespace, and a
// process is placed in its cgroup when it is cloned (CLONE_INTO_CGROUP via
// Box.File), so everything the box ever runs starts inside it.
//
// Where the cgroup comes from (Decide, table-tested against fake trees):
//
//  1. Under a systemd user session (a user bus):
//     a. when the CLI runs inside the user manager (user@UID.service: a
//     desktop terminal, systemd-run --user), every box is a sub-cgroup of
//     one delegated scope, devbox.scope in the manager's app.slice, found
//     by path (no D-Bus) and validated as input; only when it is missing it
//     is started once through the user bus, under a lock, with a keeper
//     process (package cgroup/keeper) in its leaf devbox.scope/keeper;
//     b. otherwise (an ssh or console session, whose cgroup's common
//     ancestor with devbox.scope belongs to root, so clone3 could not place
//     a box there), a transient scope devbox-<id>.scope with Delegate=yes
//     is started through the *user* bus for each box; the CLI is the
//     scope's first process.
//  2. Otherwise, the caller's own cgroup when it is delegated to the caller
//     (owned by it, cgroup.procs and cgroup.subtree_control writable).
//  3. Otherwise there is no cgroup: fine when no limit was asked for, an
//     error with the reason and the fix when one was.
//
// In every case the base cgroup is then laid out the same way, as cgroup v2's
// no-internal-processes rule requires (devbox.scope's leaf is "keeper"):
//
//	<base>/                  controllers enabled in cgroup.subtree_control
//	<base>/devbox-leaf/      the processes that were in <base> (the CLI itself)
//	<base>/devbox-<id>/      the box: limits, and every process of the box
//
// A cgroup v1 or hybrid host, a controller that is not delegated, or a
// missing session all fail before anything starts when a limit is asked for
// (errors carry a "(hint: …)" with the fix), and are silent otherwise.
//
// The box's cgroup path is recorded in containers/<id>/cgroup (WriteRecord)
// so that `devbox stats` and `devbox update` find a running box. The value
// files are written and read with containerd/cgroups v3 (cgroup2.NewManager,
// Update, Stat).
package cgroup
