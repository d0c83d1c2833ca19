package warm

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFingerprint: a holder serves only starts whose fingerprint is its
// own, so every input of the start and of what the init inherits must
// change it, and nothing else may.
func TestFingerprint(t *testing.T) {
	base := sample()
	fp := fingerprint(&base, "0::/user.slice\n")
	if again := fingerprint(&base, "0::/user.slice\n"); again != fp {
		t.Fatalf("two fingerprints of the same start differ:\n%s\n%s", fp, again)
	}
	// What the init inherits from this process goes into it too.
	in := inherited()
	for _, k := range []string{"ns=mnt:", "ns=net:", "ns=user:", "status=Umask:", "status=NoNewPrivs:", "status=Seccomp:",
		"status=CapBnd:", "status=Cpus_allowed_list:", "limits=", "oom_score_adj=", "attr/current=", "prio="} {
		if !strings.Contains(in, "\n"+k) && !strings.HasPrefix(in, k) {
			t.Errorf("the inherited attributes have no %q line:\n%s", k, in)
		}
	}
	tests := []struct {
		name   string
		change func(r *Start) string // returns the cgroup
	}{
		{"exe", func(r *Start) string { r.Exe = "/other/devbox-init"; return "0::/user.slice\n" }},
		{"env", func(r *Start) string { r.Env = append(r.Env, "DEVBOX_TRACE=1"); return "0::/user.slice\n" }},
		{"flags", func(r *Start) string { r.Flags &^= syscall.CLONE_NEWNET; return "0::/user.slice\n" }},
		{"setpgid", func(r *Start) string { r.Setpgid = false; return "0::/user.slice\n" }},
		{"fds", func(r *Start) string { r.Handshake = true; return "0::/user.slice\n" }},
		{"uid map", func(r *Start) string { r.UIDMap = []string{"-", "0 1000 1"}; return "0::/user.slice\n" }},
		{"gid map", func(r *Start) string { r.GIDMap[2] = "300000"; return "0::/user.slice\n" }},
		{"cgroup", func(r *Start) string { return "0::/user.slice/other.scope\n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample()
			r.UIDMap = append([]string(nil), base.UIDMap...)
			r.GIDMap = append([]string(nil), base.GIDMap...)
			cg := tt.change(&r)
			if fingerprint(&r, cg) == fp {
				t.Errorf("changing the %s left the fingerprint as it was", tt.name)
			}
		})
	}
	// What a child inherits from this process: its umask.
	old := syscall.Umask(0o077)
	changed := fingerprint(&base, "0::/user.slice\n")
	syscall.Umask(old)
	if changed == fp {
		t.Error("another umask left the fingerprint as it was")
	}
	// The arguments (box id, spec descriptor) come with each request.
	r := sample()
	r.Args = []string{"devbox-init", "fd:9"}
	if fingerprint(&r, "0::/user.slice\n") != fp {
		t.Error("the arguments changed the fingerprint")
	}
}

func TestHolderPaths(t *testing.T) {
	s := sample()
	a := fingerprint(&s, "x")
	s1, l1 := Paths("/run/user/1", a)
	s2, l2 := Paths("/run/user/1", a)
	if s1 != s2 || l1 != l2 {
		t.Errorf("paths of one fingerprint differ: %s %s, %s %s", s1, l1, s2, l2)
	}
	if !strings.HasPrefix(s1, "/run/user/1/devbox/warm/h-") || !strings.HasSuffix(s1, ".sock") ||
		strings.TrimSuffix(s1, ".sock") != strings.TrimSuffix(l1, ".lock") {
		t.Errorf("socket %s, lock %s", s1, l1)
	}
	seen := map[string]bool{}
	for i := 0; i < 64; i++ {
		sk, _ := Paths("/d", fingerprint(&s, strings.Repeat("x", i)))
		seen[sk] = true
	}
	if len(seen) < 32 {
		t.Errorf("64 fingerprints share %d sockets", len(seen))
	}
}

// TestReadConfig: the holder's configuration round-trips and a broken one
// is refused.
func TestReadConfig(t *testing.T) {
	s := sample()
	c := Config{RuntimeDir: "/r", FP: fingerprint(&s, "x"), Idle: 30, Start: s}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := ReadConfig(b); !ok || !reflect.DeepEqual(got, c) {
		t.Fatalf("ReadConfig = %+v, %v", got, ok)
	}
	bad := func(change func(c *Config)) []byte {
		d := c
		d.Start.UIDMap = slices.Clone(c.Start.UIDMap)
		change(&d)
		b, _ := json.Marshal(d)
		return b
	}
	for _, b := range [][]byte{b[:20], []byte("junk"), append(slices.Clone(b), "{}"...),
		bad(func(c *Config) { c.Idle = -1 }),
		bad(func(c *Config) { c.RuntimeDir = "r" }),
		bad(func(c *Config) { c.FP = "fp" }),
		bad(func(c *Config) { c.Start.UIDMap[0] = "newuidmap" }),
	} {
		if _, ok := ReadConfig(b); ok {
			t.Errorf("ReadConfig accepted %q", b)
		}
	}
}

// TestFingerprintCgroup: a start whose init moves into its box's cgroup
// does not depend on the caller's cgroup (one holder for every terminal);
// one that stays in the spare's cgroup does.
func TestFingerprintCgroup(t *testing.T) {
	s := sample()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(&s, true) != fingerprint(&s, movedKey) || Fingerprint(&s, false) != fingerprint(&s, string(b)) ||
		Fingerprint(&s, true) == Fingerprint(&s, false) {
		t.Error("Fingerprint's cgroup is not movedKey for a moved init, and the caller's for another")
	}
}

// TestPrivate: the warm path uses a runtime directory only when nobody else
// can write it or devbox's directories in it (other owners are the
// integration test's: TestEscapeWarmRuntimeDirOfAnotherUser).
func TestPrivate(t *testing.T) {
	for _, c := range []struct {
		name                 string
		rt, devbox, warmMode os.FileMode // 0: not made
		warmLink             bool
		want                 bool
	}{
		{name: "fresh", rt: 0o700, want: true},
		{name: "readable", rt: 0o755, devbox: 0o700, warmMode: 0o700, want: true},
		{name: "world-writable", rt: 0o777},
		{name: "sticky", rt: 0o777 | os.ModeSticky},
		{name: "devbox readable by others", rt: 0o700, devbox: 0o755},
		{name: "warm writable by the group", rt: 0o700, devbox: 0o700, warmMode: 0o770},
		{name: "warm a link", rt: 0o700, devbox: 0o700, warmLink: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := t.TempDir()
			mk := func(p string, mode os.FileMode) {
				if mode == 0 {
					return
				}
				if err := os.Mkdir(p, 0o700); err != nil && !os.IsExist(err) {
					t.Fatal(err)
				}
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
			mk(rt, c.rt)
			mk(rt+"/devbox", c.devbox)
			mk(Dir(rt), c.warmMode)
			if c.warmLink {
				other := t.TempDir()
				if err := os.Symlink(other, Dir(rt)); err != nil {
					t.Fatal(err)
				}
			}
			if got := Private(rt); got != c.want {
				t.Errorf("Private = %v, want %v", got, c.want)
			}
		})
	}
}

// TestSendRecv: one message is NUL-terminated strings and descriptors; a
// message not ended by a NUL, a truncated one and the end of the
// connection are errors, with whatever descriptors came.
func TestSendRecv(t *testing.T) {
	pair := func(t *testing.T) (int, int) {
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(sp[0]); unix.Close(sp[1]) })
		return sp[0], sp[1]
	}
	a, b := pair(t)
	if err := Send(a, []int{0, 1}, "ok", "", "12"); err != nil {
		t.Fatal(err)
	}
	parts, fds, err := Recv(b)
	for _, fd := range fds {
		unix.Close(fd)
	}
	if err != nil || !reflect.DeepEqual(parts, []string{"ok", "", "12"}) || len(fds) != 2 {
		t.Fatalf("Recv = %q, %d descriptors, %v", parts, len(fds), err)
	}
	for _, tt := range []struct {
		name string
		msg  []byte
	}{
		{"not terminated", []byte("ok\x0012")},
		{"truncated", append(make([]byte, 1<<16+10), 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t)
			if err := unix.SetsockoptInt(a, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<18); err != nil {
				t.Fatal(err)
			}
			if err := unix.Sendmsg(a, tt.msg, unix.UnixRights(0), nil, 0); err != nil {
				t.Fatal(err)
			}
			parts, fds, err := Recv(b)
			for _, fd := range fds {
				unix.Close(fd)
			}
			if err == nil || len(fds) != 1 {
				t.Errorf("Recv = %q, %d descriptors, %v", parts, len(fds), err)
			}
		})
	}
	a, b = pair(t)
	if err := unix.Shutdown(a, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Recv(b); err == nil {
		t.Error("Recv at the end of the connection")
	}
}
