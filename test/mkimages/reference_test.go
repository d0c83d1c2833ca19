package main

import (
	"archive/tar"
	"bytes"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func fakeBusybox() *busyboxInfo {
	return &busyboxInfo{
		data:     []byte("not really busybox\n"),
		applets:  []string{"cat", "ls", "sh"},
		platform: v1.Platform{OS: "linux", Architecture: "amd64"},
	}
}

func TestLayersReference(t *testing.T) {
	bi, err := layersImage(fakeBusybox())
	if err != nil {
		t.Fatal(err)
	}
	ents, skipped, err := referenceApply(bi.raws)
	if err != nil {
		t.Fatal(err)
	}
	content := func(p string) string {
		e, ok := ents[p]
		if !ok {
			t.Fatalf("%s missing", p)
		}
		return e.SHA256
	}
	absent := []string{
		"/data/whitedir/old", "/data/whitedir/sub", "/data/whitedir/sub/deep",
		"/data/opaque/old1", "/data/opaque/old2", "/data/opaque/subdir/x",
		"/data/dir2file/child", "/data/dir2file/sub", "/data/special/null",
	}
	for _, p := range absent {
		if _, ok := ents[p]; ok {
			t.Errorf("%s should be gone", p)
		}
	}
	present := map[string]string{
		"/data/whiteme": "file", "/data/whitedir": "dir", "/data/whitedir/new": "file",
		"/data/opaque/new1": "file", "/data/opaque/subdir/y": "file",
		"/data/file2dir": "dir", "/data/file2dir/inside": "file", "/data/dir2file": "file",
		"/data/special/fifo": "fifo", "/data/links/abs": "symlink", "/bin/sh": "symlink",
		"/etc/devbox-layers-release": "file",
	}
	for p, typ := range present {
		if e, ok := ents[p]; !ok || e.Type != typ {
			t.Errorf("%s: got %+v, want type %s", p, e, typ)
		}
	}
	if content("/data/hl/a") == content("/data/hl/b") {
		t.Error("replacing hl/a must not change hl/b")
	}
	if ents["/data/hl/b"].HardlinkGroup != "" || ents["/data/hl/a"].HardlinkGroup != "" {
		t.Error("hl/a and hl/b are no longer linked")
	}
	if g := ents["/data/hl/d"].HardlinkGroup; g != "/data/hl/c" || ents["/data/hl/c"].HardlinkGroup != g {
		t.Errorf("hl/d should be linked to hl/c, group %q", g)
	}
	if e := ents["/data/modes/setuid"]; e.Mode != "4755" || e.UID != 0 {
		t.Errorf("setuid: %+v", e)
	}
	if e := ents["/data/opaque"]; e.Mode != "0750" || e.UID != 1000 {
		t.Errorf("opaque dir metadata not updated: %+v", e)
	}
	if e := ents["/data/xattr/file"]; e.Xattrs["user.test"] != "devbox-xattr-value" {
		t.Errorf("xattr: %+v", e)
	}
	if e := ents["/data/mtime/epoch"]; e.Mtime != 0 {
		t.Errorf("epoch mtime: %+v", e)
	}
	if len(skipped) != 1 || skipped[0].Path != "/data/special/null" {
		t.Errorf("skipped: %+v", skipped)
	}
	layers, _ := bi.img.Layers()
	var mts []string
	for _, l := range layers {
		mt, _ := l.MediaType()
		mts = append(mts, string(mt))
	}
	want := []string{
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+gzip",
	}
	if len(mts) != len(want) {
		t.Fatalf("layers: %v", mts)
	}
	for i := range want {
		if mts[i] != want[i] {
			t.Errorf("layer %d media type %s, want %s", i+1, mts[i], want[i])
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, err := layersImage(fakeBusybox())
	if err != nil {
		t.Fatal(err)
	}
	b, err := layersImage(fakeBusybox())
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.img.Digest()
	db, _ := b.img.Digest()
	if da != db {
		t.Fatalf("digests differ: %s %s", da, db)
	}
}

func TestNormalizeTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0755},
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0755, Uname: "root"},
		{Name: "./etc/f", Typeflag: tar.TypeReg, Mode: 0644, Size: 2,
			PAXRecords: map[string]string{"SCHILY.xattr.user.x": "1", "atime": "1.5"}},
		{Name: "./etc/g", Typeflag: tar.TypeLink, Linkname: "./etc/f", Mode: 0644},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("hi"))
		}
	}
	tw.Close()
	raw, err := normalizeTar(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ents, _, err := referenceApply([][]byte{raw})
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 3 || ents["/etc/g"].HardlinkGroup != "/etc/f" || ents["/etc/f"].Xattrs["user.x"] != "1" {
		t.Fatalf("%+v", ents)
	}
}
