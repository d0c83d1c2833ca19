// Package slirp4netns runs slirp4netns for a box. Its ParentDriver is
// devbox's own, not rootlesskit's, for one reason: rootlesskit's creates the
// tap first with "nsenter --preserve-credentials ip tuntap add", which works
// where the caller is root of the box's user namespace and fails in devbox's
// keep-id namespace (the caller keeps its own, non-root uid there, and ip
// loses the capabilities at exec). slirp4netns creates the tap itself when
// it joins the namespace, so devbox only starts it: with --ready-fd, and
// with --exit-fd so that it ends when the helper does, however the helper
// ends. The ChildDriver is rootlesskit's.
package slirp4netns
