// Package hostexec lets a dev box run commands on the host: `devbox-host
// -- CMD` in the box (and the xdg-open shim, the same program under that
// name) asks a helper of devbox's on the host to run CMD as the user.
//
//	box: devbox-host ──connect──▶ /run/devbox/host.sock   (SOCK_SEQPACKET;
//	       bound from $XDG_RUNTIME_DIR/devbox/<id16>/host.sock, the box's only)
//	  agent.Request{exec, argv, env subset, cwd, terminal, size} [+ stdin, stdout, stderr]
//	                          ◀── agent.Reply{started, pid} [+ pty master]
//	  agent.Request{signal} … ──▶
//	                          ◀── agent.Reply{exit, code}
//	host: H  the helper, stage "hostexec" of the embedded init program,
//	         your uid, the host's namespaces; started with the box, exits
//	         with the box's init (a pidfd of it is its fd 4)
//
// The wire format is the box agent's (package runtime/agent) in the other
// direction. Only dev boxes get the socket and the helper; sandboxed boxes
// (devbox run, --home DIR) have neither. The helper serves a connection
// only when its peer (SO_PEERCRED) is the box owner's uid in the box's own
// PID namespace (not a nested one), and trusts nothing else it receives:
// the request is "run this argv as you", which a dev box may ask by
// design (it shares your home, so it could anyway; docs/security.md). The
// command gets the host environment devbox was started with plus the
// caller's terminal and locale variables (TERM, COLORTERM, LANG, LANGUAGE,
// LC_*, NO_COLOR), the caller's working directory when it is under the
// home (bound at the same path in a dev box), else the home; the exit
// code (128+N for a signal) comes back.
package hostexec

import (
	"path/filepath"
	"strings"
)

// Stage is the helper's stage name (rootless.HostStage).
const Stage = "hostexec"

// SocketName is the helper's socket in the box's runtime directory.
const SocketName = "host.sock"

// BoxSocket is where a dev box finds the helper's socket.
const BoxSocket = "/run/devbox/host.sock"

// SocketEnv overrides BoxSocket for devbox-host.
const SocketEnv = "DEVBOX_HOST_SOCKET"

// XdgOpenEnv set to "box" in a box makes the xdg-open shim run the box's
// own xdg-open (/usr/bin/xdg-open) instead of the host's.
const XdgOpenEnv = "DEVBOX_XDG_OPEN"

// Program names under which devbox's embedded program is devbox-host, and
// where a dev box gets them.
const (
	ClientName  = "devbox-host"
	XdgOpenName = "xdg-open"
	ClientPath  = "/usr/local/bin/devbox-host"
	XdgOpenPath = "/usr/local/bin/xdg-open"
)

// IsClient reports whether a program started as argv0 is devbox-host (or
// its xdg-open shim).
func IsClient(argv0 string) bool {
	b := filepath.Base(argv0)
	return b == ClientName || b == XdgOpenName
}

// passedVars are the caller's variables a host command gets, over the
// host environment devbox was started with.
func passed(kv string) bool {
	k, _, ok := strings.Cut(kv, "=")
	if !ok {
		return false
	}
	switch k {
	case "TERM", "COLORTERM", "LANG", "LANGUAGE", "NO_COLOR":
		return true
	}
	return strings.HasPrefix(k, "LC_") && len(k) > 3
}

// Env returns the host command's environment: base (the helper's) with
// the caller's passed variables (only those) replacing base's.
func Env(base, caller []string) []string {
	over := map[string]string{}
	var order []string
	for _, kv := range caller {
		if !passed(kv) || strings.ContainsRune(kv, 0) {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if _, dup := over[k]; !dup {
			order = append(order, k)
		}
		over[k] = kv
	}
	out := make([]string, 0, len(base)+len(order))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := over[k]; ok || strings.HasPrefix(k, "_DEVBOX_") {
			continue
		}
		out = append(out, kv)
	}
	for _, k := range order {
		out = append(out, over[k])
	}
	return out
}

// Dir maps the caller's working directory to the host: itself when it is
// home or under it (a dev box binds the home at the same path) and isDir
// says it is a directory on the host, else home.
func Dir(cwd, home string, isDir func(string) bool) string {
	if cwd == "" || !filepath.IsAbs(cwd) || home == "" {
		return home
	}
	c := filepath.Clean(cwd)
	if (c == home || strings.HasPrefix(c, home+"/")) && isDir(c) {
		return c
	}
	return home
}
