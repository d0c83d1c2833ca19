//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/test/testutil"
)

// exportFiles lists every file under the places devbox export writes to.
func (e *env) exportFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, d := range []string{filepath.Join(e.data, "applications"), filepath.Join(e.data, "icons"),
		filepath.Join(e.home, ".local", "bin"), filepath.Join(e.config, "systemd")} {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Name() == "mimeinfo.cache" {
				// update-desktop-database's: it must not name an export.
				if b, _ := os.ReadFile(p); strings.Contains(string(b), "devbox-") {
					out = append(out, p+": "+string(b))
				}
				return nil
			}
			if err == nil && !fi.IsDir() {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// The --bin launcher, run on the host, runs the box's program with the
// caller's arguments, stdin, working directory and exit code.
func TestExportBinLauncher(t *testing.T) {
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "dev", "--image", "debian")
	r := e.ok("export", "dev", "--bin", "/bin/sh")
	launcher := filepath.Join(e.home, ".local", "bin", "sh")
	if strings.TrimSpace(r.stdout) != launcher {
		t.Fatalf("export printed %q, want %s", r.stdout, launcher)
	}
	work := filepath.Join(e.home, "project dir")
	os.MkdirAll(work, 0o755)
	c := exec.Command(launcher, "-c", `. /etc/os-release; echo "$VERSION_CODENAME"; printf '[%s]' "$@"; echo; pwd; cat; exit 7`, "sh", "a b", "$HOME", "")
	c.Env = e.environ()
	c.Dir = work
	c.Stdin = strings.NewReader("from stdin\n")
	out, err := c.Output()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 7 {
		t.Fatalf("launcher: %v (want exit 7)\n%s", err, out)
	}
	want := "trixie\n[a b][$HOME][]\n" + work + "\nfrom stdin\n"
	if got := lastLines(string(out), 4) + "\n"; got != want {
		t.Errorf("launcher printed\n%q\nwant\n%q", got, want)
	}
	// A bare name is looked up in the box's PATH.
	e.ok("export", "dev", "--bin", "cat")
	var items []struct{ Kind, Name, Source, Path string }
	if err := json.Unmarshal([]byte(e.ok("export", "dev", "--list", "--json").stdout), &items); err != nil || len(items) != 2 {
		t.Fatalf("--list --json: %v %+v", err, items)
	}
	if items[1].Source != "/usr/bin/cat" || items[1].Kind != "bin" {
		t.Errorf("listed %+v", items[1])
	}
	// A file that is not devbox's is never replaced.
	mine := filepath.Join(e.home, ".local", "bin", "true")
	os.WriteFile(mine, []byte("#!/bin/sh\n"), 0o755)
	if r := e.run("export", "dev", "--bin", "true"); r.code != 125 || !strings.Contains(r.stderr, "not exported from this box") {
		t.Errorf("overwrote a file of the user's: %d %q", r.code, r.stderr)
	}
	os.Remove(mine)
	e.ok("unexport", "dev", "--bin", "cat")
	if _, err := os.Stat(filepath.Join(e.home, ".local", "bin", "cat")); err == nil {
		t.Error("unexport left the launcher")
	}
	e.ok("rm", "-f", "dev")
	if left := e.exportFiles(t); len(left) != 0 {
		t.Errorf("rm left exported files: %q", left)
	}
}

const testPNG = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"

// Exported desktop entries pass desktop-file-validate, carry the box's
// name, run through devbox, and take the icon from the box's own files
// only; rm removes them.
func TestExportAppDesktopEntry(t *testing.T) {
	validate, err := exec.LookPath("desktop-file-validate")
	if err != nil {
		testutil.Skip(t, "desktop-file-validate is not installed (apt install desktop-file-utils; test/provision.sh does)")
	}
	e := newEnv(t)
	e.stopBoxesAtCleanup()
	e.ok("create", "dev", "--image", "debian")
	secret := filepath.Join(e.home, "secret.png")
	os.WriteFile(secret, []byte(testPNG+"host secret"), 0o600)
	setup := `set -e
mkdir -p /usr/share/applications /usr/share/icons/hicolor/48x48/apps /usr/share/pixmaps
cp "$PNG" /usr/share/icons/hicolor/48x48/apps/org.example.Edit.png
cat > /usr/share/applications/org.example.Edit.desktop <<'X'
[Desktop Entry]
Type=Application
Name=Example Editor
Comment=Edits text
Exec=/usr/bin/example-edit --new-window %F
Icon=org.example.Edit
Categories=GTK;Utility;TextEditor;
MimeType=text/plain;
Terminal=false
X
ln -s "$SECRET" /usr/share/pixmaps/evil.png
cat > /usr/share/applications/evil.desktop <<'X'
[Desktop Entry]
Type=Application
Name=Evil
Exec=evil"; touch /tmp/pwned; "x %U
Icon=evil
X
`
	png := filepath.Join(e.home, "icon.png")
	os.WriteFile(png, []byte(testPNG), 0o644)
	e.ok("shell", "--root", "dev", "--", "env", "PNG="+png, "SECRET="+secret, "sh", "-c", setup)
	r := e.ok("export", "dev", "--app", "org.example.Edit")
	desk := strings.TrimSpace(r.stdout)
	if desk != filepath.Join(e.data, "applications", "devbox-dev-org.example.Edit.desktop") {
		t.Fatalf("export printed %q", r.stdout)
	}
	b, _ := os.ReadFile(desk)
	if out, err := exec.Command(validate, desk).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("desktop-file-validate: %v\n%s\n%s", err, out, b)
	}
	icon := filepath.Join(e.data, "icons", "devbox", "dev-org.example.Edit.png")
	for _, line := range []string{"Name=Example Editor (dev)", "Exec=" + e.bin + " --store " + e.root + " exec dev -- /usr/bin/example-edit --new-window %F", "Icon=" + icon} {
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("no %q in\n%s", line, b)
		}
	}
	if ib, err := os.ReadFile(icon); err != nil || string(ib) != testPNG {
		t.Errorf("icon: %v %q", err, ib)
	}
	// Hostile: the icon links to a host file (reachable in a dev box, not
	// in the box's own files) and the Exec line tries to break out.
	r = e.ok("export", "dev", "--app", "evil")
	evil := strings.TrimSpace(r.stdout)
	eb, _ := os.ReadFile(evil)
	if out, err := exec.Command(validate, evil).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("desktop-file-validate (hostile entry): %v\n%s\n%s", err, out, eb)
	}
	if strings.Contains(string(eb), "Icon=") || !strings.Contains(r.stderr, "no icon") {
		t.Errorf("an icon was taken through a link out of the box:\n%s\n%s", eb, r.stderr)
	}
	if !strings.Contains(string(eb), "Exec="+e.bin+" --store "+e.root+` exec dev -- "evil; touch /tmp/pwned; x" %U`+"\n") {
		t.Errorf("Exec of the hostile entry:\n%s", eb)
	}
	e.ok("unexport", "dev", "--app", "evil")
	if _, err := os.Stat(evil); err == nil {
		t.Error("unexport left the desktop file")
	}
	// A sandboxed box exports nothing.
	other := filepath.Join(t.TempDir(), "h")
	os.MkdirAll(other, 0o755)
	e.ok("create", "sb", "--image", "debian", "--home", other)
	if r := e.run("export", "sb", "--bin", "/bin/sh"); r.code != 125 || !strings.Contains(r.stderr, "sandboxed") {
		t.Errorf("export from a sandboxed box: %d %q", r.code, r.stderr)
	}
	// Here no systemd user manager runs: --service says so.
	if r := e.run("export", "dev", "--service", "ssh"); r.code != 125 || !strings.Contains(r.stderr, "no systemd user manager") {
		t.Errorf("--service without a user manager: %d %q", r.code, r.stderr)
	}
	e.ok("rm", "-f", "dev")
	if left := e.exportFiles(t); len(left) != 0 {
		t.Errorf("rm left exported files: %q", left)
	}
	if _, err := os.Stat(secret); err != nil {
		t.Errorf("the host file behind the hostile icon: %v", err)
	}
}
