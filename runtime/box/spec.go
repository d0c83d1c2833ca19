package box

import (
	"fmt"
	"github.com/devbox-dev/devbox/runtime/session"
	"path/filepath"
	"strings"

	"github.com/devbox-dev/devbox/hostexec"
	"github.com/devbox-dev/devbox/runtime"
	"github.com/devbox-dev/devbox/runtime/device"
)

// Host is what the box spec takes from the caller's machine and session.
// The CLI fills it in; tests fake it.
type Host struct {
	Account runtime.Account
	Env     []string               // the caller's environment
	Exists  func(path string) bool // reports whether a host path exists
	// Socket reports whether path is a unix socket itself (not a
	// symbolic link to one); nil means none is.
	Socket     func(path string) bool
	Resolve    func(path string) string // resolves symlinks (for /etc/localtime); may be nil
	ResolvConf string
	Devices    []string // host device paths present (/dev/dri, …)
	// NVIDIA is the host's NVIDIA driver (device.FindNVIDIA), nil without
	// one: dev boxes get it.
	NVIDIA *device.NVIDIA
	// HostExec is, for a dev box, the channel devbox-host uses (package
	// hostexec); nil for none.
	HostExec *HostExec
}

// HostExec is what a dev box gets for devbox-host: the host helper's
// socket, and the program bound in as devbox-host (and as the xdg-open
// shim when XdgOpen).
type HostExec struct {
	Socket, Program string
	XdgOpen         bool
}

func (h Host) getenv(k string) string {
	for _, kv := range h.Env {
		if key, v, ok := strings.Cut(kv, "="); ok && key == k {
			return v
		}
	}
	return ""
}

// DefaultGrace is how long a box outlives its last session.
const DefaultGrace = 10

// Spec derives the runtime spec that starts box r as a persistent agent,
// with the user's home, volumes and desktop session sockets bound in.
func Spec(r *Record, lowers []string, boxDir string, h Host) (*runtime.Spec, error) {
	acct := h.Account
	// sudo in the box is a setuid program: no no_new_privs unless asked.
	sec, err := r.Security(acct.Home)
	if err != nil {
		return nil, err
	}
	home := r.Home
	if home == "" {
		home = acct.Home
	}
	s := &runtime.Spec{
		Version:      runtime.SpecVersion,
		ID:           r.ID,
		Name:         r.Name,
		Lowers:       lowers,
		ContainerDir: boxDir,
		Args:         []string{"/bin/sh"}, // unused: the agent runs sessions
		Env:          r.Env,
		Cwd:          "/",
		Hostname:     r.Hostname,
		Net:          r.Net,
		Hosts:        fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", r.Hostname),
		ResolvConf:   h.ResolvConf,
		Agent:        true,
		GraceSeconds: r.Grace,
		Account:      &acct,
		Security:     sec,
	}
	if s.GraceSeconds <= 0 {
		s.GraceSeconds = DefaultGrace
	}
	if s.Net == "" {
		s.Net = "host"
	}
	s.Security.ScopeAbstract = s.Net == "host" && !IsDevBox(r, acct.Home)
	add := func(src, dst string, ro bool) {
		for _, m := range s.Mounts {
			if m.Target == dst {
				return
			}
		}
		s.Mounts = append(s.Mounts, runtime.Mount{Source: src, Target: dst, ReadOnly: ro, Optional: true})
	}
	if home != "" && acct.Home != "" {
		m := runtime.Mount{Source: home, Target: acct.Home}
		if r.Home != "" {
			m.Dev, m.Ino = r.HomeDev, r.HomeIno
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, v := range r.Volumes {
		s.Mounts = append(s.Mounts, runtime.Mount{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly, Dev: v.Dev, Ino: v.Ino})
	}
	exists := h.Exists
	if exists == nil {
		exists = func(string) bool { return false }
	}
	if r.Home == "" || r.Desktop {
		sandbox := !IsDevBox(r, acct.Home)
		desktopMounts(s, h, acct, sandbox, !sandbox || r.Audio, exists, add)
	}
	// The host's GPUs: for boxes with the desktop session (a sandboxed
	// box without --desktop gets none); the NVIDIA driver's files for dev
	// boxes only.
	if IsDevBox(r, acct.Home) || r.Desktop {
		for _, d := range h.Devices {
			add(d, d, false)
		}
	}
	if nv := h.NVIDIA; nv != nil && IsDevBox(r, acct.Home) {
		for _, d := range nv.Devices {
			add(nv.Source(d), d, false)
		}
		for _, l := range [][]string{nv.Libraries, nv.Programs, nv.Files} {
			for _, p := range l {
				add(nv.Source(p), p, true)
			}
		}
	}
	// Devices the user asked for (create --device), checked at create;
	// one that is gone (unplugged) is skipped.
	for _, d := range r.Devices {
		add(d, d, false)
	}
	if x := h.HostExec; x != nil && IsDevBox(r, acct.Home) {
		// Dev boxes only: a sandboxed box has no channel to the host.
		add(x.Socket, hostexec.BoxSocket, false)
		add(x.Program, hostexec.ClientPath, true)
		if x.XdgOpen {
			add(x.Program, hostexec.XdgOpenPath, true)
		}
	}
	if exists("/etc/localtime") {
		src := "/etc/localtime"
		if h.Resolve != nil {
			src = h.Resolve(src)
		}
		add(src, "/etc/localtime", true)
	}
	return s, nil
}

// IsDevBox reports whether box r is a dev box for the user whose home is
// userHome: its home is the user's own (docs/security.md).
func IsDevBox(r *Record, userHome string) bool { return session.IsDevBox(r.Home, userHome) }

// LinkerDirs are the directories box r's linker cache must add at its
// start (ldconfig DIR…): those of the NVIDIA driver's libraries, in a dev
// box.
func LinkerDirs(r *Record, h Host) []string {
	if h.NVIDIA == nil || !IsDevBox(r, h.Account.Home) {
		return nil
	}
	return h.NVIDIA.LibDirs
}

// runtimeSockets are the sockets of a desktop session in
// $XDG_RUNTIME_DIR that a box gets, besides $WAYLAND_DISPLAY: PipeWire,
// PulseAudio (audioSockets) and the D-Bus session bus.
var runtimeSockets = []string{"pipewire-0", "pulse/native", "bus"}

// audioSockets are the audio servers' sockets among runtimeSockets.
var audioSockets = []string{"pipewire-0", "pulse/native"}

// desktopMounts adds the caller's desktop session to s: an empty private
// $XDG_RUNTIME_DIR (a tmpfs of the user's, mode 0700) with only the
// session's sockets bound into it — never the runtime directory itself,
// which holds devbox's own state (devbox/: the helpers devbox executes,
// prestart recipes and replay records, every box's agent socket and
// init.pid, the warm holders' sockets) — plus X11's socket directory,
// XAUTHORITY and the SSH agent. Every socket must be a socket, not a
// link, and none may lie in devbox/.
//
// A sandboxed box (--home DIR --desktop) gets only what cannot start a
// program on the host: Wayland, and PipeWire and PulseAudio when audio
// (--audio) says so. The session bus (systemd-run --user, D-Bus
// activation), X11 (synthetic keystrokes into any window, a terminal too)
// and the SSH agent (your keys) stay outside; sandboxedSessionDrops are
// their variables. The audio servers stay outside by default because
// their protocols load code into them: PulseAudio's load-module (a LADSPA
// plugin by path, a new protocol socket anywhere), PipeWire's factories.
func desktopMounts(s *runtime.Spec, h Host, acct runtime.Account, sandbox, audio bool, exists func(string) bool, add func(src, dst string, ro bool)) {
	isSock := h.Socket
	if isSock == nil {
		isSock = func(string) bool { return false }
	}
	rt := h.getenv("XDG_RUNTIME_DIR")
	if rt != "" && (!filepath.IsAbs(rt) || filepath.Clean(rt) != rt || rt == "/") {
		rt = ""
	}
	state := ""
	if rt != "" {
		state = filepath.Join(rt, "devbox")
	}
	resolve := h.Resolve
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	inState := func(p string) bool {
		return state != "" && (under(p, state) || under(resolve(p), resolve(state)))
	}
	sock := func(p string) {
		if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p || inState(p) || !isSock(p) {
			return
		}
		add(p, p, false)
	}
	if rt != "" && exists(rt) {
		s.Mounts = append(s.Mounts, runtime.Mount{Target: rt, Tmpfs: true})
		if w := h.getenv("WAYLAND_DISPLAY"); w != "" {
			if !filepath.IsAbs(w) {
				w = filepath.Join(rt, w)
			}
			sock(w)
		}
		for _, n := range runtimeSockets {
			if sandbox && n == "bus" || !audio && contains(audioSockets, n) {
				continue
			}
			sock(filepath.Join(rt, n))
		}
	}
	if sandbox {
		return
	}
	if h.getenv("DISPLAY") != "" && exists("/tmp/.X11-unix") {
		add("/tmp/.X11-unix", "/tmp/.X11-unix", true)
	}
	for _, p := range []string{h.getenv("SSH_AUTH_SOCK"), busPath(h.getenv("DBUS_SESSION_BUS_ADDRESS"))} {
		if !under(p, acct.Home) || rt != "" && under(p, rt) {
			sock(p)
		}
	}
	if x := h.getenv("XAUTHORITY"); x != "" && filepath.IsAbs(x) && filepath.Clean(x) == x && exists(x) && !under(x, acct.Home) && !inState(x) {
		add(x, x, true)
	}
}

// SessionEnv is the environment of one session in box r (session.Env).
func SessionEnv(r *Record, acct runtime.Account, caller []string, root bool) []string {
	return session.Env(r.SessionBox(), acct, caller, root)
}

// SessionBox is what a session takes from r.
func (r *Record) SessionBox() session.Box {
	return session.Box{ID: r.ID, Name: r.Name, Home: r.Home, Env: r.Env, Audio: r.Audio, NoProvision: r.NoProvision, Provision: r.Provision}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func under(p, dir string) bool {
	if dir == "" {
		return false
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// busPath extracts the socket path of a D-Bus address "unix:path=/…".
func busPath(addr string) string {
	for _, part := range strings.Split(addr, ";") {
		rest, ok := strings.CutPrefix(part, "unix:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if p, ok := strings.CutPrefix(kv, "path="); ok {
				return p
			}
		}
	}
	return ""
}
