// Package export puts a dev box's applications, commands and services on
// the host: a .desktop entry in the user's applications directory, a small
// launcher script in ~/.local/bin, a systemd user unit. Each runs its
// program in the box through devbox.
//
// Everything read from the box — desktop files, icons, unit files, names
// and paths — is hostile input. Files are read from the box's layers on
// the host (rootfs.go) with every symbolic link resolved inside the box's
// own root, never followed on the host; values are validated and written
// back in a form of our own (quoted for the Exec key, the shell or
// systemd), never copied through. What was exported is recorded in the
// box's directory (exports.json), and a file is only removed when it still
// carries the box's mark, so `devbox unexport` and `devbox rm` remove
// exactly what was exported.
package export
