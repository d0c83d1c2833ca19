// Package pasta runs passt's pasta for a box. Its ParentDriver is devbox's
// own, not rootlesskit's, for two reasons: rootlesskit's leaves pasta's
// namespace-to-host forwarding on "auto" (-T/-U), so pasta would bind in
// the box every port the host listens on — a dev server in the box could
// not use a port the host uses — and it lets pasta daemonize with nothing
// to stop it (pasta releases of 2023 do not quit when a namespace given by
// pid goes away). devbox runs pasta in the foreground as a child of the
// network helper (with a parent-death signal), gives it the namespace by a
// path that the helper removes at the end (pasta quits when it goes), and
// maps only the gateway to the host. The ChildDriver is rootlesskit's: pasta
// configures the interface itself.
package pasta
