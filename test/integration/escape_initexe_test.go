//go:build integration

package integration

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEscapeInitExeOverwrite: the CVE-2019-5736 class. A box's init runs
// devbox's init program from $XDG_RUNTIME_DIR/devbox/devbox-init-*/, the
// file every later start executes. A box whose root may trace PID 1
// (--cap-add SYS_PTRACE, ALL) opened that file through /proc/1/exe and
// changed its mode (box root has CAP_FOWNER over a file of the user's,
// whose uid the box maps); then it made the init execute /bin/sleep
// (ptrace), so that nothing ran the file any more, and opened it for
// writing: its next content would have run as the user on the host at the
// next start. probe initexe does that and writes the file's first bytes
// back unchanged. From a run, a run with every capability and no filter,
// and a root session of a box with a home of its own: the init's program
// must not be the file, and the file (content, mode, times) must stay as
// it was; before the fix "write after exec" was ok and its ctime and
// mtime changed.
//
// The runtime directory is the test's own, so that no warm holder or
// other box runs the file meanwhile (which would keep it busy, and the
// attack from succeeding on a vulnerable build, by chance).
func TestEscapeInitExeOverwrite(t *testing.T) {
	rt := t.TempDir()
	if err := os.Chmod(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	// Before newEnv: its clean-up (rm of the box) runs first and must see
	// this runtime directory.
	t.Setenv("XDG_RUNTIME_DIR", rt)
	e := newEnv(t)
	img := probeImage(t, e)
	e.stopBoxesAtCleanup()
	cold := []string{"DEVBOX_WARM=0"}
	ok := func(args ...string) {
		t.Helper()
		if r := e.runEnv(cold, args...); r.code != 0 {
			t.Fatalf("devbox %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	ok("run", "--net", "none", img, "--", "true")
	files, _ := filepath.Glob(filepath.Join(rt, "devbox", "devbox-init-*", "devbox-init"))
	if len(files) != 1 {
		t.Fatalf("the init's program in the runtime directory: %v (want one file)", files)
	}
	prog := files[0]
	before := fileState(t, prog)

	attack := func(name string, args ...string) {
		t.Run(name, func(t *testing.T) {
			r := e.runEnv(cold, args...)
			m := lines(r.stdout)
			t.Logf("probe initexe (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
			if m["exe"] == prog || strings.Contains(m["exe"], filepath.Join(rt, "devbox")) {
				t.Errorf("the init runs %s, the file later starts execute", m["exe"])
			}
			for _, k := range []string{"write while running", "write after exec"} {
				if m[k] == "ok" {
					t.Errorf("%s: the box wrote the init's program", k)
				}
			}
			if after := fileState(t, prog); after != before {
				t.Errorf("the init's program changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	attack("run SYS_PTRACE", "run", "--net", "none", "--cap-add", "SYS_PTRACE", img, "--", "/probe", "initexe")
	attack("run ALL unconfined", "run", "--net", "none", "--cap-add", "ALL", "--security-opt", "seccomp=unconfined",
		img, "--", "/probe", "initexe")
	ok("create", "sb", "--image", img, "--home", sandboxHome(t), "--net", "none", "--cap-add", "SYS_PTRACE", "--grace", "1")
	attack("session SYS_PTRACE", "exec", "--root", "sb", "--", "/probe", "initexe")
}

// fileState is what changes when a file is written or its mode changed:
// content, mode, modification and change times.
func fileState(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256 %x mode %o mtime %d.%09d ctime %d.%09d", sha256.Sum256(b), st.Mode,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}
