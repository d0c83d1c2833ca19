// Package commit turns a box's writable layer into an image layer and an
// image in the store (devbox commit).
//
// The upper directory is read in the "commit-read" stage, inside the
// keep-id user namespace (files there belong to the box's subordinate ids),
// as hostile input: it is walked with directory descriptors, symbolic links
// are stored as links and never followed, and only regular files opened
// without following links are read. What devbox itself wrote into the layer
// is left out or undone (Exclude): the user's account lines in /etc/passwd,
// /etc/group and /etc/shadow, the sudoers drop-in, and the empty mount
// points of the home, volumes, sockets, devices and the devbox-host shims.
// Overlay whiteouts become OCI whiteouts. The layer tar is reproducible:
// entries in walk order with sorted names, mtimes to the second as stored
// (as podman keeps them), no atime, ctime, user or group names.
package commit
