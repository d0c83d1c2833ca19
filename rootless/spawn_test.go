package rootless

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/devbox-dev/devbox/internal/warm"
	"github.com/devbox-dev/devbox/test/testutil"
)

// TestMain lets the test binary play every devbox process: the namespace
// helpers re-execute /proc/self/exe, which is this binary.
func TestMain(m *testing.M) {
	switch st := CurrentStage(); {
	case st == "probe":
		os.Exit(probe())
	}
	os.Exit(m.Run())
}

// probe runs in the inner namespace: it reports its ids and creates files
// as root and as the user in the directory named by argv[1].
func probe() int {
	dir := os.Args[1]
	uidMap, _ := os.ReadFile("/proc/self/uid_map")
	fmt.Printf("uid=%d gid=%d\n%s", os.Getuid(), os.Getgid(), uidMap)
	// The capability sets of this thread: a full effective set, and
	// nothing inheritable or ambient left for what it would execute.
	status, _ := os.ReadFile("/proc/thread-self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "CapInh:") || strings.HasPrefix(l, "CapAmb:") || strings.HasPrefix(l, "CapEff:") {
			fmt.Println(strings.Join(strings.Fields(l), " "))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "by-root"), nil, 0o644); err != nil {
		fmt.Println("write:", err)
		return 1
	}
	own := os.Getenv("PROBE_OWN")
	var u int
	fmt.Sscan(own, &u)
	if err := os.Lchown(filepath.Join(dir, "by-root"), 0, 0); err != nil {
		fmt.Println("chown root:", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(dir, "by-user"), nil, 0o644); err != nil {
		return 1
	}
	if err := os.Lchown(filepath.Join(dir, "by-user"), u, u); err != nil {
		fmt.Println("chown user:", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(dir, "by-33"), nil, 0o644); err != nil {
		return 1
	}
	if err := os.Lchown(filepath.Join(dir, "by-33"), 33, 33); err != nil {
		fmt.Println("chown 33:", err)
		return 1
	}
	if len(os.Args) > 2 {
		return 7 // exit codes pass through
	}
	return 0
}

func TestKeepIDNamespace(t *testing.T) {
	m, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.RequireUnprivilegedUserns(t, !m.Single())
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := Run(Spec{
		Stage:   "probe",
		Args:    []string{dir},
		Env:     []string{fmt.Sprintf("PROBE_OWN=%d", m.UID)},
		Mapping: m,
		Stdout:  &out,
		Stderr:  &out,
	})
	if err != nil || code != 0 {
		t.Fatalf("probe: code %d err %v\n%s", code, err, out.String())
	}
	// In the keep-id namespace the probe is root, with every capability
	// effective and none inheritable or ambient.
	if !strings.HasPrefix(out.String(), "uid=0 gid=0\n") {
		t.Errorf("probe ids: %s", out.String())
	}
	caps := warm.AllCaps()
	full := fmt.Sprintf("CapEff: %016x", uint64(1)<<len(caps)-1)
	for _, want := range []string{"CapInh: 0000000000000000", "CapAmb: 0000000000000000", full} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("probe output lacks %q:\n%s", want, out.String())
		}
	}
	// The map is keep-id in host ids: the caller itself, root the first
	// subordinate id.
	if !strings.Contains(out.String(), fmt.Sprintf("\n%10d %10d %10d\n", m.UID, m.UID, 1)) {
		t.Errorf("uid_map lacks the caller's own id:\n%s", out.String())
	}
	want := map[string]int{"by-root": m.SubUIDs[0].Start, "by-user": m.UID, "by-33": m.SubUIDs[0].Start + 33}
	for name, uid := range want {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Uid) != m.HostUID(map[string]int{"by-root": 0, "by-user": m.UID, "by-33": 33}[name]) {
			t.Errorf("%s is owned by host uid %d, want %d", name, st.Uid, uid)
		}
	}
	// Clean up the subuid-owned files from inside again is not needed: the
	// directory is ours and unlinking needs only write access to it.
}

func TestExitCodePassesThrough(t *testing.T) {
	m, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.RequireUnprivilegedUserns(t, !m.Single())
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	code, err := Run(Spec{Stage: "probe", Args: []string{dir, "exit7"}, Env: []string{fmt.Sprintf("PROBE_OWN=%d", m.UID)}, Mapping: m})
	if err != nil || code != 7 {
		t.Fatalf("code %d err %v, want 7", code, err)
	}
}

func TestMissingNewuidmap(t *testing.T) {
	m, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.RequireUnprivilegedUserns(t, !m.Single())
	t.Setenv("PATH", t.TempDir())
	_, err = Run(Spec{Stage: "probe", Args: []string{t.TempDir()}, Mapping: m})
	if err == nil || !strings.Contains(err.Error(), "newuidmap not found") || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("err = %v, want a newuidmap hint", err)
	}
}
