// Package session starts one command in a running box through the box's
// agent (runtime/agent) and relays it until it exits: the request
// (environment, working directory, ids, terminal and its size), the
// caller's descriptors (a terminal among them relayed through a pipe), the
// signals, and the exit code and message. Both the CLI (`devbox shell`,
// `devbox exec`) and devbox's front (cmd/devbox, which serves a running
// box without starting the full CLI) use it, so the two send the same
// request. It is light: no cobra, no image code, no runtime spec
// (test/imports keeps the front's dependencies small).
package session

import (
	"bufio"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/devbox-dev/devbox/provision"
)

// Account is the caller as a box knows them (runtime.Account is this
// type): the init writes it into the box's /etc at every start, and
// sessions take the user's name, home and shell from it.
type Account struct {
	Name  string `json:"name"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Group string `json:"group"`
	Gecos string `json:"gecos,omitempty"`
	Home  string `json:"home"`
	Shell string `json:"shell"` // the host login shell; the init falls back to bash, then sh
	// Sudo adds the user to the image's sudo/wheel group and a NOPASSWD
	// sudoers drop-in.
	Sudo bool `json:"sudo"`
}

// HostAccount describes the caller, host uid and gid, as the box should
// know them: the passwd and group entries, with $HOME winning over the
// passwd entry's home (it is the home the user works in).
func HostAccount(uid, gid int) Account {
	a := Account{UID: uid, GID: gid, Sudo: true}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		a.Name, a.Home, a.Gecos = u.Username, u.HomeDir, u.Name
	}
	if a.Name == "" {
		a.Name = os.Getenv("USER")
	}
	if h := os.Getenv("HOME"); h != "" && filepath.IsAbs(h) {
		a.Home = filepath.Clean(h)
	}
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		a.Group = g.Name
	}
	a.Shell = loginShellOf(uid)
	return a
}

// loginShellOf reads the user's login shell from /etc/passwd, then $SHELL.
func loginShellOf(uid int) string {
	if f, err := os.Open("/etc/passwd"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Split(sc.Text(), ":")
			if len(fl) == 7 && fl[2] == strconv.Itoa(uid) && fl[6] != "" {
				return fl[6]
			}
		}
	}
	if s := os.Getenv("SHELL"); s != "" {
		return s
	}
	return "/bin/bash"
}

// Box is what a session takes from a box's record (runtime/box.Record,
// box.json and provision.json).
type Box struct {
	ID   string
	Name string
	// Home is the record's home: "" or the user's own for a dev box.
	Home string
	// Env is the image's Env plus create-time --env.
	Env []string
	// Audio: a sandboxed box gets the audio servers' variables too.
	Audio       bool
	NoProvision bool
	Provision   *provision.State
}

// IsDevBox reports whether a box with home home (a record's Home) is a
// dev box for a user whose home is userHome: it has the user's own home.
// Any other box is a sandbox.
func IsDevBox(home, userHome string) bool {
	return home == "" || (userHome != "" && filepath.Clean(home) == filepath.Clean(userHome))
}

// ownHome reports whether dir is the caller's $HOME.
func ownHome(dir string) bool {
	h := os.Getenv("HOME")
	return h != "" && filepath.IsAbs(h) && filepath.Clean(h) == filepath.Clean(dir)
}

// NeedsProvision reports whether box b gets first-start provisioning
// before a session (without --reprovision): a dev box of a caller with
// subordinate ids, neither provisioned nor created with --no-provision,
// unless the configuration's [provision] auto is false.
func NeedsProvision(b Box, single bool, auto *bool) bool {
	switch {
	case b.Home != "" && !ownHome(b.Home), single, b.NoProvision || b.Provision != nil:
		return false
	case auto != nil && !*auto:
		return false
	}
	return true
}

// sessionVars are the caller's variables every session gets (LC_* too).
var sessionVars = []string{
	"TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ",
	"DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_RUNTIME_DIR", "XDG_SESSION_TYPE",
	"XDG_CURRENT_DESKTOP", "XDG_SESSION_DESKTOP", "DBUS_SESSION_BUS_ADDRESS",
	"SSH_AUTH_SOCK", "PULSE_SERVER", "PIPEWIRE_REMOTE", "EDITOR", "VISUAL",
}

// sandboxedSessionDrops are the session variables a sandboxed box does not
// get: what they name is not in it (desktopMounts).
var sandboxedSessionDrops = []string{"DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS", "SSH_AUTH_SOCK"}

// audioSessionVars name the audio servers: a sandboxed box gets them only
// with Audio (a PULSE_SERVER may name a server other than the socket).
var audioSessionVars = []string{"PULSE_SERVER", "PIPEWIRE_REMOTE"}

// Env is the environment of one session: the box's (image Env and
// --env at create time), the user's identity, and the caller's session
// variables (display, sockets, locale, terminal), so a box entered from a
// new desktop session uses that session.
func Env(r Box, acct Account, caller []string, root bool) []string {
	sandbox := !IsDevBox(r.Home, acct.Home)
	vals := map[string]string{}
	var keys []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	for _, kv := range r.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			set(k, v)
		}
	}
	if _, ok := vals["PATH"]; !ok {
		set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	for _, kv := range caller {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if strings.HasPrefix(k, "LC_") || contains(sessionVars, k) && !(sandbox && (contains(sandboxedSessionDrops, k) || !r.Audio && contains(audioSessionVars, k))) {
			// A locale the box lacks (provisioning could not install it)
			// becomes C.UTF-8: a shell that works, not one that warns.
			if p := r.Provision; p != nil && p.LangFallback && v == p.Lang && (k == "LANG" || strings.HasPrefix(k, "LC_")) {
				v = provision.FallbackLang
			}
			set(k, v)
		}
	}
	if root {
		set("HOME", "/root")
		set("USER", "root")
		set("LOGNAME", "root")
	} else {
		set("HOME", acct.Home)
		set("USER", acct.Name)
		set("LOGNAME", acct.Name)
		set("SHELL", acct.Shell)
	}
	set("container", "devbox")
	set("DEVBOX_NAME", r.Name)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+vals[k])
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
