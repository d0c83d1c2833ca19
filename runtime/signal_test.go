package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Signals sent to the box (as the CLI forwards them to the namespace
// helper) reach the command through the init.
func TestSignalForwarding(t *testing.T) {
	f := newFixture(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2} {
		name := strings.TrimPrefix(sigName(sig), "SIG")
		l := f.startLive(f.spec("sh", "-c", `trap 'echo got-`+name+`; exit 42' `+name+`; echo READY; while :; do sleep 0.01; done`))
		l.waitFor("READY")
		if err := l.p.Signal(sig); err != nil {
			t.Fatal(err)
		}
		got := l.waitFor("got-" + name)
		if code := l.finish(); code != 42 || got != "" {
			t.Errorf("%s: exit %d, output %q", name, code, got)
		}
	}
	// A command that does not handle the signal dies of it: 128+N.
	l := f.startLive(f.spec("sh", "-c", "echo READY; exec sleep 100"))
	l.waitFor("READY")
	time.Sleep(50 * time.Millisecond) // let the exec happen
	l.p.Signal(syscall.SIGTERM)
	if code := l.finish(); code != 128+int(syscall.SIGTERM) {
		t.Errorf("sleep killed by SIGTERM: exit %d", code)
	}
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGUSR1:
		return "SIGUSR1"
	case syscall.SIGUSR2:
		return "SIGUSR2"
	}
	return s.String()
}

// Orphans are reparented to the init, which reaps them: no zombie is left
// while the command still runs.
func TestZombiesAreReaped(t *testing.T) {
	f := newFixture(t)
	out := f.sh(`for i in 1 2 3 4 5; do sh -c 'sleep 0.01 & exit 0'; done; sleep 0.3; ps -o pid,ppid,stat,comm; echo end`)
	n := 0
	for _, line := range lines(out) {
		fields := strings.Fields(line)
		if len(fields) >= 3 && strings.HasPrefix(fields[2], "Z") {
			t.Errorf("zombie in the box: %s", line)
		}
		if len(fields) == 4 && fields[3] == "sleep" {
			n++
		}
	}
	if n != 0 {
		t.Errorf("%d orphaned sleeps still listed:\n%s", n, out)
	}
}

// When the command exits, the other processes of the box go with the PID
// namespace, and the exit code is the command's.
func TestBoxEndsWithCommand(t *testing.T) {
	f := newFixture(t)
	start := time.Now()
	r := f.run(f.spec("sh", "-c", "sleep 100 & sleep 100 & exit 7"), nil)
	if r.code != 7 {
		t.Errorf("exit %d: %s", r.code, r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the box outlived its command by %v", d)
	}
}

// An image whose paths are symbolic links out of the root (absolute,
// relative, to a file or a directory) cannot make the init write to, or
// mount over, anything on the host.
func TestSymlinkEscape(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	os.Chmod(outside, 0o777)
	victim := filepath.Join(outside, "victim-file")
	writeFile(t, victim, "HOST ORIGINAL\n")
	victimDir := filepath.Join(outside, "victim-dir")
	os.Mkdir(victimDir, 0o777)
	etc := filepath.Join(f.layer, "etc")
	victim2 := filepath.Join(outside, "victim-2")
	writeFile(t, victim2, "HOST ORIGINAL\n")
	// /etc/hosts → a host file; /etc/hostname → another one through
	// ../..; /etc/resolv.conf → a host path that does not exist yet.
	must(t, os.Symlink(victim, filepath.Join(etc, "hosts")))
	must(t, os.Symlink("../../../../../../../../.."+victim2, filepath.Join(etc, "hostname")))
	must(t, os.Symlink(filepath.Join(outside, "created-by-box"), filepath.Join(etc, "resolv.conf")))
	// A mount target through a symlinked directory.
	must(t, os.Symlink(victimDir, filepath.Join(f.layer, "data")))
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "payload"), "payload\n")
	s := f.spec("sh", "-c", "cat /etc/hosts /etc/hostname /etc/resolv.conf; ls /data; echo written > /etc/hosts.new")
	s.Mounts = []Mount{{Source: src, Target: "/data/mnt"}}
	r := f.run(s, nil)
	if r.code != 0 {
		t.Fatal(r)
	}
	if want := "127.0.0.1 localhost devbox-test\ndevbox-test\nnameserver 192.0.2.53\nmnt\n"; r.stdout != want {
		t.Errorf("inside: %q, want %q", r.stdout, want)
	}
	for _, v := range []string{victim, victim2} {
		if b, _ := os.ReadFile(v); string(b) != "HOST ORIGINAL\n" {
			t.Errorf("the host file %s was written: %q", v, b)
		}
	}
	for _, p := range []string{filepath.Join(outside, "created-by-box"), filepath.Join(victimDir, "mnt")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("the init created %s on the host", p)
		}
	}
	// The links were followed inside the root: the files exist in the
	// box's writable layer, at the host paths' names.
	if _, err := os.Stat(filepath.Join(f.dir, "upper", victim)); err != nil {
		t.Errorf("the hosts file was not created inside the box: %v", err)
	}

	// /etc itself a link to a host directory.
	f2 := newFixture(t)
	must(t, os.RemoveAll(filepath.Join(f2.layer, "etc")))
	must(t, os.Symlink(victimDir, filepath.Join(f2.layer, "etc")))
	r = f2.run(f2.spec("cat", "/etc/hosts"), nil)
	if r.code != 0 || r.stdout != "127.0.0.1 localhost devbox-test\n" {
		t.Errorf("/etc → host dir: %s", r)
	}
	if entries, _ := os.ReadDir(victimDir); len(entries) != 0 {
		t.Errorf("the init wrote into the host directory: %v", entries)
	}
}

// An image without /etc, /run, /tmp or /proc still starts: mount points
// are created in the writable layer.
func TestImageWithoutDirectories(t *testing.T) {
	f := newFixture(t)
	for _, d := range []string{"etc", "tmp", "proc", "sys", "dev", "root", "home"} {
		must(t, os.RemoveAll(filepath.Join(f.layer, d)))
	}
	s := f.spec("sh", "-c", "cat /etc/hosts; ls /proc/self/fd | wc -l; echo $HOME")
	s.Mounts = []Mount{{Source: t.TempDir(), Target: "/run/user/1000"}}
	r := f.run(s, nil)
	if r.code != 0 || r.stdout != "127.0.0.1 localhost devbox-test\n4\n/\n" {
		t.Errorf("%s", r)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
