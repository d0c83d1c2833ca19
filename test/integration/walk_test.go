//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/test/expect"
	"golang.org/x/sys/unix"
)

// walkRequest asks the in-namespace stage to mount the layers with
// overlayfs, exactly as a box sees them, and compare the result with an
// expectation file written by test/mkimages.
type walkRequest struct {
	Lowers   []string `json:"lowers"`
	Expect   string   `json:"expect"`
	Platform string   `json:"platform"`
	Scratch  string   `json:"scratch"`
}

func walkMain() int {
	var req walkRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Println("walk: reading request:", err)
		return 2
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Println("walk: making / private:", err)
		return 2
	}
	merged := filepath.Join(req.Scratch, "merged")
	upper := filepath.Join(req.Scratch, "upper")
	work := filepath.Join(req.Scratch, "work")
	for _, d := range []string{merged, upper, work} {
		os.MkdirAll(d, 0o755)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", strings.Join(req.Lowers, ":"), upper, work)
	if len(req.Lowers) == 1 {
		// A single lower still goes through overlay so whiteouts are hidden.
		opts = fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", req.Lowers[0], upper, work)
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		fmt.Println("walk: mounting overlay:", err)
		return 2
	}
	f, err := expect.Load(req.Expect)
	if err != nil {
		fmt.Println("walk:", err)
		return 2
	}
	img, err := f.Image(req.Platform)
	if err != nil {
		fmt.Println("walk:", err)
		return 2
	}
	diffs, err := expect.Compare(img, merged, expect.Options{})
	if err != nil {
		fmt.Println("walk:", err)
		return 2
	}
	for _, d := range diffs {
		fmt.Println(d)
	}
	unix.Unmount(merged, unix.MNT_DETACH)
	os.RemoveAll(req.Scratch)
	if len(diffs) > 0 {
		return 1
	}
	return 0
}

// compareInNamespace runs walkMain in the keep-id namespace, where the
// files' owners read as the image's own ids.
func compareInNamespace(t *testing.T, e *env, ref, expectFile, platform string) {
	t.Helper()
	req := walkRequest{Lowers: e.lowers(ref), Expect: expectFile, Platform: platform, Scratch: filepath.Join(e.root, "tmp", "walk-scratch")}
	body, _ := json.Marshal(req)
	var out bytes.Buffer
	code, err := rootless.Run(rootless.Spec{
		Stage:      "walk",
		Mapping:    mapping(t),
		Namespaces: rootless.Namespaces{Mount: true},
		Stdin:      bytes.NewReader(body),
		Stdout:     &out,
		Stderr:     &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) > 40 {
			lines = append(lines[:40], fmt.Sprintf("… and %d more", len(lines)-40))
		}
		t.Errorf("%s: unpacked rootfs differs from the reference extraction (exit %d):\n%s", ref, code, strings.Join(lines, "\n"))
	}
}
