package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// mediaSet selects Docker schema2 or OCI media types.
type mediaSet struct {
	manifest, config, index types.MediaType
	gzip, zstd, none        types.MediaType
}

var (
	dockerMedia = mediaSet{
		manifest: types.DockerManifestSchema2, config: types.DockerConfigJSON, index: types.DockerManifestList,
		gzip: types.DockerLayer, none: types.DockerUncompressedLayer,
	}
	ociMedia = mediaSet{
		manifest: types.OCIManifestSchema1, config: types.OCIConfigJSON, index: types.OCIImageIndex,
		gzip: types.OCILayer, zstd: types.OCILayerZStd, none: types.OCIUncompressedLayer,
	}
)

func (m mediaSet) layerType(c compression) types.MediaType {
	switch c {
	case compGzip:
		return m.gzip
	case compZstd:
		return m.zstd
	}
	return m.none
}

// layerDef is one layer to build: its entries (or a prebuilt raw tar) and
// how to compress it.
type layerDef struct {
	comment string
	comp    compression
	entries []entry
	raw     []byte // used instead of entries when set
}

// builtImage is one platform image plus what is needed for its expectation.
type builtImage struct {
	platform v1.Platform
	img      v1.Image
	raws     [][]byte
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// makeImage assembles an image from layer definitions, deterministically.
func makeImage(ms mediaSet, plat v1.Platform, cfg v1.Config, defs []layerDef) (*builtImage, error) {
	img := mutate.MediaType(empty.Image, ms.manifest)
	img = mutate.ConfigMediaType(img, ms.config)
	cf := &v1.ConfigFile{
		Architecture: plat.Architecture,
		Variant:      plat.Variant,
		OS:           plat.OS,
		Created:      v1.Time{Time: fixedTime},
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	var adds []mutate.Addendum
	var raws [][]byte
	for _, d := range defs {
		raw := d.raw
		if raw == nil {
			if raw, err = buildTar(d.entries); err != nil {
				return nil, fmt.Errorf("%s: %w", d.comment, err)
			}
		}
		mt := ms.layerType(d.comp)
		if mt == "" {
			return nil, fmt.Errorf("%s: compression not available with these media types", d.comment)
		}
		l, err := newLayer(raw, d.comp, mt)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer: l,
			History: v1.History{
				Created:   v1.Time{Time: fixedTime},
				CreatedBy: "devbox test/mkimages: " + d.comment,
			},
		})
		raws = append(raws, raw)
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	return &builtImage{platform: plat, img: img, raws: raws}, nil
}

// --- entry helpers -------------------------------------------------------

func dir(name string, mode int64, uid, gid int) entry {
	return entry{Name: name, Type: tar.TypeDir, Mode: mode, UID: uid, GID: gid}
}

func file(name string, mode int64, uid, gid int, data string) entry {
	return entry{Name: name, Type: tar.TypeReg, Mode: mode, UID: uid, GID: gid, Data: []byte(data)}
}

func symlink(name, target string) entry {
	return entry{Name: name, Type: tar.TypeSymlink, Mode: 0777, Link: target}
}

// hardlink links name to target. Like real tar writers, the link header
// repeats the target inode's metadata: unpackers differ in whether they apply
// a hardlink header's mode/owner/mtime to the shared inode (moby and
// containers/storage do, GNU tar and umoci do not), so the test images never
// depend on it.
func hardlink(name string, target entry) entry {
	l := target
	l.Name, l.Type, l.Link, l.Data = name, tar.TypeLink, target.Name, nil
	return l
}

// --- busybox --------------------------------------------------------------

// busyboxInfo describes the host's static busybox binary.
type busyboxInfo struct {
	data     []byte
	applets  []string
	platform v1.Platform
}

func elfPlatform(data []byte) (v1.Platform, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return v1.Platform{}, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return v1.Platform{}, fmt.Errorf("busybox is dynamically linked (install busybox-static)")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case elf.EM_AARCH64:
		return v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil
	case elf.EM_ARM:
		return v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, nil
	case elf.EM_386:
		return v1.Platform{OS: "linux", Architecture: "386"}, nil
	case elf.EM_RISCV:
		return v1.Platform{OS: "linux", Architecture: "riscv64"}, nil
	case elf.EM_PPC64:
		return v1.Platform{OS: "linux", Architecture: "ppc64le"}, nil
	case elf.EM_S390:
		return v1.Platform{OS: "linux", Architecture: "s390x"}, nil
	}
	return v1.Platform{}, fmt.Errorf("busybox: unsupported ELF machine %v", f.Machine)
}

func loadBusybox(p string) (*busyboxInfo, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	plat, err := elfPlatform(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	out, err := exec.Command(p, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", p, err)
	}
	seen := map[string]bool{"busybox": true}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if !seen[a] && !strings.Contains(a, "/") {
			seen[a] = true
			applets = append(applets, a)
		}
	}
	sort.Strings(applets)
	if !seen["sh"] {
		return nil, fmt.Errorf("%s has no sh applet", p)
	}
	return &busyboxInfo{data: data, applets: applets, platform: plat}, nil
}

const (
	passwdMin = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	groupMin  = "root:x:0:\nnobody:x:65534:\n"
)

// busyboxEntries is a minimal runnable root filesystem.
func busyboxEntries(bb *busyboxInfo, passwd, group string) []entry {
	es := []entry{
		dir("bin", 0755, 0, 0),
		entry{Name: "bin/busybox", Type: tar.TypeReg, Mode: 0755, Data: bb.data},
		dir("dev", 0755, 0, 0),
		dir("etc", 0755, 0, 0),
		file("etc/passwd", 0644, 0, 0, passwd),
		file("etc/group", 0644, 0, 0, group),
		dir("proc", 0555, 0, 0),
		dir("root", 0700, 0, 0),
		dir("sys", 0555, 0, 0),
		dir("tmp", 01777, 0, 0),
	}
	for _, a := range bb.applets {
		es = append(es, symlink("bin/"+a, "busybox"))
	}
	return es
}

func busyboxImage(bb *busyboxInfo, ms mediaSet) (*builtImage, error) {
	return makeImage(ms, bb.platform, v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{defaultPath}},
		[]layerDef{{comment: "busybox rootfs from the host's busybox-static", comp: compGzip,
			entries: busyboxEntries(bb, passwdMin, groupMin)}})
}

// --- debian -----------------------------------------------------------------

func debianImage(tarPath string, plat v1.Platform) (*builtImage, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := normalizeTar(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tarPath, err)
	}
	return makeImage(dockerMedia, plat, v1.Config{Cmd: []string{"bash"}, Env: []string{defaultPath}},
		[]layerDef{{comment: "debootstrap --variant=minbase trixie", comp: compGzip, raw: raw}})
}

// --- test/layers ------------------------------------------------------------

const (
	passwdLayers = "root:x:0:0:root:/root:/bin/sh\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
		"user:x:1000:1000:user:/home/user:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	groupLayers = "root:x:0:\nwww-data:x:33:\nuser:x:1000:\nnobody:x:65534:\n"
)

var (
	longDir    = "data/long/" + strings.Repeat("d", 80)
	longFile   = longDir + "/" + strings.Repeat("f", 120)
	unicodeDir = "data/unicode"
	unicodeF   = unicodeDir + "/h\u00e9llo w\u00f6rld \u2713.txt"
)

// layersDefs is the unpacker torture test. See test/README.md for what each
// path checks.
func layersDefs(bb *busyboxInfo) []layerDef {
	hlA := file("data/hl/a", 0644, 0, 0, "old content of a\n")
	hlC := file("data/hl/c", 0640, 1000, 33, "content of c\n")
	l1 := busyboxEntries(bb, passwdLayers, groupLayers)
	l1 = append(l1,
		dir("data", 0755, 0, 0),
		// ownership and permission bits
		dir("data/owners", 0755, 0, 0),
		file("data/owners/root-0644", 0644, 0, 0, "owned by root\n"),
		file("data/owners/www-0640", 0640, 33, 33, "owned by www-data\n"),
		file("data/owners/user-0600", 0600, 1000, 1000, "owned by user\n"),
		file("data/owners/nobody-0444", 0444, 65534, 65534, "owned by nobody\n"),
		file("data/owners/mixed-0664", 0664, 1000, 33, "user 1000, group 33\n"),
		dir("data/owners/userdir", 0750, 1000, 1000),
		file("data/owners/userdir/f", 0660, 1000, 1000, "inside userdir\n"),
		dir("data/owners/wwwdir", 02775, 33, 33),
		dir("data/owners/nobodydir", 0700, 65534, 65534),
		dir("data/modes", 0755, 0, 0),
		file("data/modes/setuid", 04755, 0, 0, "#!/bin/sh\necho setuid-root\n"),
		file("data/modes/setgid", 02755, 0, 33, "#!/bin/sh\necho setgid\n"),
		file("data/modes/exec-0711", 0711, 0, 0, "#!/bin/sh\necho exec\n"),
		file("data/modes/none-0000", 0000, 1000, 1000, "no permissions\n"),
		file("data/modes/empty", 0644, 0, 0, ""),
		dir("data/modes/ro-dir", 0555, 0, 0),
		file("data/modes/ro-dir/inner", 0444, 0, 0, "file in a read-only dir\n"),
		dir("data/sticky", 01777, 0, 0),
		file("data/sticky/f", 0666, 1000, 1000, "in sticky dir\n"),
		// symlinks
		dir("data/links", 0755, 0, 0),
		symlink("data/links/rel", "../owners/root-0644"),
		symlink("data/links/abs", "/data/owners/root-0644"),
		symlink("data/links/dangling", "/nonexistent/target"),
		symlink("data/links/dirlink", "../owners"),
		entry{Name: "data/links/owned", Type: tar.TypeSymlink, Mode: 0777, UID: 1000, GID: 1000, Link: "rel", Mtime: 1600000000},
		// hardlinks
		dir("data/hl", 0755, 0, 0),
		hlA,
		hardlink("data/hl/b", hlA),
		hlC,
		// special files
		dir("data/special", 0755, 0, 0),
		entry{Name: "data/special/fifo", Type: tar.TypeFifo, Mode: 0644},
		entry{Name: "data/special/null", Type: tar.TypeChar, Mode: 0666, Major: 1, Minor: 3},
		// xattrs
		dir("data/xattr", 0755, 0, 0),
		entry{Name: "data/xattr/file", Type: tar.TypeReg, Mode: 0644, Data: []byte("has user.test xattr\n"),
			Xattrs: map[string]string{"user.test": "devbox-xattr-value"}},
		// mtimes
		dir("data/mtime", 0755, 0, 0),
		entry{Name: "data/mtime/epoch", Type: tar.TypeReg, Mode: 0644, ZeroTime: true, Data: []byte("1970\n")},
		entry{Name: "data/mtime/y2001", Type: tar.TypeReg, Mode: 0644, Mtime: 1000000000, Data: []byte("2001\n")},
		entry{Name: "data/mtime/y2040", Type: tar.TypeReg, Mode: 0644, Mtime: 2208988800, Data: []byte("2040\n")},
		entry{Name: "data/mtime/dir", Type: tar.TypeDir, Mode: 0755, Mtime: 1234567890},
		// long and non-ASCII names
		dir("data/long", 0755, 0, 0),
		dir(longDir, 0755, 0, 0),
		file(longFile, 0644, 0, 0, "long path name\n"),
		symlink("data/long/longlink", "/"+longFile),
		dir(unicodeDir, 0755, 0, 0),
		file(unicodeF, 0644, 0, 0, "unicode name\n"),
		// victims of later layers
		file("data/whiteme", 0644, 0, 0, "whited out in layer 2\n"),
		dir("data/whitedir", 0755, 0, 0),
		file("data/whitedir/old", 0644, 0, 0, "gone with its dir\n"),
		dir("data/whitedir/sub", 0755, 0, 0),
		file("data/whitedir/sub/deep", 0644, 0, 0, "gone too\n"),
		dir("data/opaque", 0755, 0, 0),
		file("data/opaque/old1", 0644, 0, 0, "hidden by opaque marker\n"),
		file("data/opaque/old2", 0644, 0, 0, "hidden by opaque marker\n"),
		dir("data/opaque/subdir", 0755, 0, 0),
		file("data/opaque/subdir/x", 0644, 0, 0, "hidden by opaque marker\n"),
		file("data/file2dir", 0644, 0, 0, "becomes a directory in layer 3\n"),
		dir("data/dir2file", 0755, 0, 0),
		file("data/dir2file/child", 0644, 0, 0, "gone when the dir becomes a file\n"),
		dir("data/dir2file/sub", 0755, 0, 0),
	)

	l2 := []entry{
		dir("data", 0755, 0, 0),
		entry{Name: "data/.wh.whiteme", Type: tar.TypeReg},
		entry{Name: "data/.wh.whitedir", Type: tar.TypeReg},
		dir("data/hl", 0755, 0, 0),
		file("data/hl/a", 0600, 1000, 1000, "new content of a, b keeps the old one\n"),
		hardlink("data/hl/d", hlC),
	}

	l3 := []entry{
		dir("data", 0755, 0, 0),
		dir("data/opaque", 0750, 1000, 1000),
		entry{Name: "data/opaque/.wh..wh..opq", Type: tar.TypeReg},
		file("data/opaque/new1", 0644, 1000, 1000, "new after opaque\n"),
		dir("data/opaque/subdir", 0700, 1000, 1000),
		file("data/opaque/subdir/y", 0644, 1000, 1000, "new after opaque\n"),
		dir("data/file2dir", 0710, 1000, 33),
		file("data/file2dir/inside", 0644, 0, 0, "file2dir is a directory now\n"),
	}

	l4 := []entry{
		dir("data", 0755, 0, 0),
		file("data/dir2file", 0600, 65534, 65534, "dir2file is a file now\n"),
		file("data/whiteme", 0640, 1000, 1000, "re-created in layer 4\n"),
		dir("data/whitedir", 0700, 33, 33),
		file("data/whitedir/new", 0644, 33, 33, "only child of the re-created dir\n"),
	}

	l5 := []entry{
		dir("etc", 0755, 0, 0),
		file("etc/devbox-layers-release", 0644, 0, 0, "devbox test/layers v1\n"),
	}

	return []layerDef{
		{comment: "layer 1: owners, modes, links, hardlinks, specials, xattrs, mtimes (gzip)", comp: compGzip, entries: l1},
		{comment: "layer 2: whiteouts, hardlink target replaced, cross-layer hardlink (zstd)", comp: compZstd, entries: l2},
		{comment: "layer 3: opaque dir, file replaced by dir (uncompressed)", comp: compNone, entries: l3},
		{comment: "layer 4: dir replaced by file, whited-out names re-created (gzip)", comp: compGzip, entries: l4},
		{comment: "layer 5: small extra file (gzip)", comp: compGzip, entries: l5},
	}
}

func layersImage(bb *busyboxInfo) (*builtImage, error) {
	return makeImage(ociMedia, bb.platform, v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{defaultPath}}, layersDefs(bb))
}

// --- test/multiarch ---------------------------------------------------------

var multiarchPlatforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
	{OS: "linux", Architecture: "arm", Variant: "v7"},
}

func archEntries(p v1.Platform) []entry {
	return []entry{file("arch", 0644, 0, 0, platformString(p)+"\n")}
}

// multiarchImages returns one OCI image per platform. The platform matching the
// host busybox gets the busybox rootfs plus /arch; the others only /arch.
func multiarchImages(bb *busyboxInfo) ([]*builtImage, error) {
	var out []*builtImage
	for _, p := range multiarchPlatforms {
		defs := []layerDef{}
		cfg := v1.Config{Env: []string{defaultPath}}
		if platformString(p) == platformString(bb.platform) {
			defs = append(defs, layerDef{comment: "busybox rootfs", comp: compGzip, entries: busyboxEntries(bb, passwdMin, groupMin)})
			cfg.Cmd = []string{"/bin/sh"}
		} else {
			cfg.Cmd = []string{"/bin/cat", "/arch"}
		}
		defs = append(defs, layerDef{comment: "marker /arch for " + platformString(p), comp: compGzip, entries: archEntries(p)})
		bi, err := makeImage(ociMedia, p, cfg, defs)
		if err != nil {
			return nil, err
		}
		out = append(out, bi)
	}
	return out, nil
}

// plainIndex is an image index whose descriptors carry only mediaType, size,
// digest and platform. (mutate.AppendManifests would also set artifactType to
// the config media type, which real-world indexes of images do not have.)
type plainIndex struct {
	raw    []byte
	im     *v1.IndexManifest
	images map[v1.Hash]v1.Image
}

func newIndex(mt types.MediaType, members []*builtImage) (*plainIndex, error) {
	ix := &plainIndex{im: &v1.IndexManifest{SchemaVersion: 2, MediaType: mt}, images: map[v1.Hash]v1.Image{}}
	for _, m := range members {
		d, err := m.img.Digest()
		if err != nil {
			return nil, err
		}
		size, err := m.img.Size()
		if err != nil {
			return nil, err
		}
		mmt, err := m.img.MediaType()
		if err != nil {
			return nil, err
		}
		p := m.platform
		ix.im.Manifests = append(ix.im.Manifests, v1.Descriptor{MediaType: mmt, Size: size, Digest: d, Platform: &p})
		ix.images[d] = m.img
	}
	raw, err := json.Marshal(ix.im)
	if err != nil {
		return nil, err
	}
	ix.raw = raw
	return ix, nil
}

func (ix *plainIndex) MediaType() (types.MediaType, error)       { return ix.im.MediaType, nil }
func (ix *plainIndex) Digest() (v1.Hash, error)                  { return sha256Hash(ix.raw), nil }
func (ix *plainIndex) Size() (int64, error)                      { return int64(len(ix.raw)), nil }
func (ix *plainIndex) IndexManifest() (*v1.IndexManifest, error) { return ix.im.DeepCopy(), nil }
func (ix *plainIndex) RawManifest() ([]byte, error)              { return ix.raw, nil }
func (ix *plainIndex) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := ix.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("index has no image %s", h)
}
func (ix *plainIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index has no child index %s", h)
}
