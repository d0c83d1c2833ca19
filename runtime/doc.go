// Package runtime is the code that runs inside a box's namespaces: the box
// init. The CLI computes a Spec on the host; rootless starts the init as
// uid 0 of the keep-id user namespace, PID 1 of a new PID namespace, with
// new mount, UTS, IPC and (unless --net host) network namespaces. The init
// assembles the root filesystem (overlay of the image layers), mounts /proc,
// /sys and a private /dev, masks sensitive paths, pivots into the root,
// starts the command as the requested user (with a pty when asked), reaps
// zombies, forwards signals, and exits with the command's status.
package runtime
