package commit

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			err := os.MkdirAll(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestWriteLayer checks what a commit keeps and leaves out of an upper
// directory, and that the tar is the same twice.
func TestWriteLayer(t *testing.T) {
	dir := t.TempDir()
	lower, upper := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
	writeTree(t, lower, map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":         "root:x:0:\nsudo:x:27:\n",
		"usr/local/bin/":    "",
		"run/":              "",
		"etc/hostname":      "image\n",
		"etc/apt/old":       "old\n",
		"secret-on-host":    "not read\n",
		"usr/share/doc/x/a": "a\n",
	})
	writeTree(t, upper, map[string]string{
		"etc/passwd":                   "root:x:0:0:root:/root:/bin/sh\nann:x:1000:1000:Ann:/home/ann:/bin/bash\n",
		"etc/group":                    "root:x:0:\nsudo:x:27:ann\nann:x:1000:\n",
		"etc/sudoers.d/devbox-ann":     "ann ALL=(ALL:ALL) NOPASSWD: ALL\n",
		"etc/.devbox-group.tmp":        "half",
		"etc/hosts":                    "",
		"home/ann/":                    "",
		"usr/local/bin/devbox-host":    "",
		"usr/local/bin/xdg-open":       "",
		"usr/local/bin/tool":           "#!/bin/sh\n",
		"run/user/1000/":               "",
		"run/devbox/host.sock":         "",
		"data/volume/":                 "",
		"opt/app/file":                 "content\n",
		"opt/app/link":                 "->/secret-on-host",
		"opt/app/dirlink":              "->../../",
		"usr/share/doc/x/opaque-kept/": "",
	})
	if err := os.Link(filepath.Join(upper, "opt/app/file"), filepath.Join(upper, "opt/app/hard")); err != nil {
		t.Fatal(err)
	}
	opaque := unix.Setxattr(filepath.Join(upper, "usr/share/doc/x"), "user.overlay.opaque", []byte("y"), 0)
	req := ReadRequest{Upper: upper, Lowers: []string{lower}, Account: &Account{Name: "ann", UID: 1000, GID: 1000},
		MountPoints: []string{"/home/ann", "/run/user/1000", "/run/devbox/host.sock", "/data/volume", "/usr/local/bin/devbox-host", "/usr/local/bin/xdg-open"}}
	var out bytes.Buffer
	if err := WriteLayer(req, &out); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(out.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := h.Name
		switch h.Typeflag {
		case tar.TypeSymlink:
			n += " -> " + h.Linkname
		case tar.TypeLink:
			n += " link " + h.Linkname
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.Uname != "" || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: times or names not cleared: %+v", h.Name, h)
		}
		names = append(names, n)
	}
	// etc/ and run/ are the image's, copied up for devbox's changes only.
	want := []string{
		"opt/", "opt/app/", "opt/app/dirlink -> ../../", "opt/app/file", "opt/app/hard link opt/app/file", "opt/app/link -> /secret-on-host",
		"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/tool",
		"usr/share/", "usr/share/doc/", "usr/share/doc/x/", "usr/share/doc/x/.wh..wh..opq", "usr/share/doc/x/opaque-kept/",
	}
	if opaque != nil {
		if !errors.Is(opaque, unix.ENOTSUP) && !errors.Is(opaque, unix.EPERM) {
			t.Fatal(opaque)
		}
		t.Logf("no user xattrs here (%v): opaque directories unchecked", opaque)
		want = append(want[:13], want[14:]...)
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("layer entries:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	var again bytes.Buffer
	if err := WriteLayer(req, &again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Error("two layers of the same directory differ")
	}

	// A user added in the box is kept, devbox's line is not.
	os.WriteFile(filepath.Join(upper, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\nann:x:1000:1000:Ann:/home/ann:/bin/bash\n"), 0o644)
	out.Reset()
	if err := WriteLayer(req, &out); err != nil {
		t.Fatal(err)
	}
	tr = tar.NewReader(bytes.NewReader(out.Bytes()))
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == "etc/passwd" {
			b, _ := io.ReadAll(tr)
			found = string(b) == "root:x:0:0:root:/root:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n" && h.Size == int64(len(b))
			if !found {
				t.Errorf("etc/passwd: %q", b)
			}
		}
	}
	if !found {
		t.Error("etc/passwd with the box's own user is not in the layer")
	}
}

// TestWriteLayerFrozen commits a box with a snapshot: what the frozen
// layer and the upper change, as one layer, content from the right layer.
func TestWriteLayerFrozen(t *testing.T) {
	dir := t.TempDir()
	lower, frozen, upper := filepath.Join(dir, "lower"), filepath.Join(dir, "frozen"), filepath.Join(dir, "upper")
	writeTree(t, lower, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "bin/keep": "k", "bin/image-file": "i"})
	writeTree(t, frozen, map[string]string{"opt/f1": "from the snapshot", "opt/gone": "x", "opt/replaced/inner": "y", "bin/": ""})
	writeTree(t, upper, map[string]string{"opt/f2": "after the snapshot", "opt/replaced": "now a file"})
	// The upper deletes a file of the snapshot and one of the image.
	whiteouts := unix.Mknod(filepath.Join(upper, "opt/gone"), unix.S_IFCHR, 0)
	if whiteouts == nil {
		os.MkdirAll(filepath.Join(upper, "bin"), 0o755)
		whiteouts = unix.Mknod(filepath.Join(upper, "bin/image-file"), unix.S_IFCHR, 0)
	}
	req := ReadRequest{Upper: upper, Lowers: []string{lower}, Frozen: []string{frozen}}
	var out bytes.Buffer
	if err := WriteLayer(req, &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var order []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
		order = append(order, h.Name)
	}
	want := map[string]string{"opt/": "", "opt/f1": "from the snapshot", "opt/f2": "after the snapshot", "opt/replaced": "now a file"}
	if whiteouts == nil {
		want["bin/.wh.image-file"] = "" // the image's file; the snapshot's opt/gone just goes
	} else {
		t.Logf("no whiteouts here (%v): deletions unchecked", whiteouts)
		want["opt/gone"] = "x"
	}
	for n, c := range want {
		if g, ok := got[n]; !ok || g != c {
			t.Errorf("%s: %q (present %v), want %q", n, g, ok, c)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok && n != "bin/" {
			t.Errorf("unexpected entry %s", n)
		}
	}
	if !slices.IsSortedFunc(order, func(a, b string) int {
		return strings.Compare(strings.ReplaceAll(a, "/", "\x00"), strings.ReplaceAll(b, "/", "\x00"))
	}) {
		t.Errorf("entries not in walk order: %v", order)
	}
}
