// Command mkimages builds devbox's offline test images deterministically,
// pushes them to a local plain-HTTP registry (skipping images whose manifest
// digest there already matches), and writes for every image tag a JSON file
// describing the expected merged root filesystem, computed by an independent
// in-memory application of the layers. See test/README.md.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

type options struct {
	registry  string
	busybox   string
	trixieTar string
	expectDir string
	digests   string
	only      map[string]bool
	noPush    bool
	force     bool
}

// target is one repository with its tags.
type target struct {
	repo string
	tags []string
	// needs says which input the target needs ("busybox", "trixie").
	needs string
}

var targets = []target{
	{repo: "library/busybox", tags: []string{"latest", "1"}, needs: "busybox"},
	{repo: "library/debian", tags: []string{"trixie", "13", "latest"}, needs: "trixie"},
	{repo: "test/layers", tags: []string{"latest"}, needs: "busybox"},
	{repo: "test/multiarch", tags: []string{"latest"}, needs: "busybox"},
}

// built is either a single image or an index of images.
type built struct {
	image   *builtImage
	index   v1.ImageIndex
	members []*builtImage
}

func (b *built) taggable() (remote.Taggable, v1.Hash, string, error) {
	if b.index != nil {
		d, err := b.index.Digest()
		if err != nil {
			return nil, v1.Hash{}, "", err
		}
		mt, err := b.index.MediaType()
		return b.index, d, string(mt), err
	}
	d, err := b.image.img.Digest()
	if err != nil {
		return nil, v1.Hash{}, "", err
	}
	mt, err := b.image.img.MediaType()
	return b.image.img, d, string(mt), err
}

func main() {
	var o options
	var only string
	list := flag.Bool("list", false, "print the image references that would be built and exit")
	flag.StringVar(&o.registry, "registry", "127.0.0.1:5000", "registry host:port (plain HTTP)")
	flag.StringVar(&o.busybox, "busybox", "/bin/busybox", "static busybox binary to put in the images")
	flag.StringVar(&o.trixieTar, "trixie-tar", "", "debootstrap trixie rootfs tar for library/debian (skipped if empty)")
	flag.StringVar(&o.expectDir, "expect-dir", "", "write expected-filesystem JSON files here")
	flag.StringVar(&o.digests, "digests", "", "write a JSON map reference -> digest here")
	flag.StringVar(&only, "only", "", "comma-separated repositories to build (default: all)")
	flag.BoolVar(&o.noPush, "no-push", false, "build and write expectations but do not contact the registry")
	flag.BoolVar(&o.force, "force", false, "push even if the registry already has the same digest")
	flag.Parse()
	if only != "" {
		o.only = map[string]bool{}
		for _, r := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(r)] = true
		}
	}
	if *list {
		for _, t := range selected(o) {
			for _, tag := range t.tags {
				fmt.Printf("%s/%s:%s\n", o.registry, t.repo, tag)
			}
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "mkimages:", err)
		os.Exit(1)
	}
}

func selected(o options) []target {
	var out []target
	for _, t := range targets {
		if o.only == nil || o.only[t.repo] {
			out = append(out, t)
		}
	}
	return out
}

func hostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
	}
	return p
}

func build(t target, bb *busyboxInfo, o options) (*built, error) {
	switch t.repo {
	case "library/busybox":
		bi, err := busyboxImage(bb, dockerMedia)
		return &built{image: bi}, err
	case "library/debian":
		bi, err := debianImage(o.trixieTar, hostPlatform())
		return &built{image: bi}, err
	case "test/layers":
		bi, err := layersImage(bb)
		return &built{image: bi}, err
	case "test/multiarch":
		members, err := multiarchImages(bb)
		if err != nil {
			return nil, err
		}
		idx, err := newIndex(ociMedia.index, members)
		if err != nil {
			return nil, err
		}
		return &built{index: idx, members: members}, nil
	}
	return nil, fmt.Errorf("unknown target %s", t.repo)
}

func remoteOptions() []remote.Option {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // only ever talk to the local registry
	return []remote.Option{remote.WithTransport(tr), remote.WithAuth(authn.Anonymous)}
}

func run(o options) error {
	var bb *busyboxInfo
	digests := map[string]string{}
	for _, t := range selected(o) {
		switch t.needs {
		case "busybox":
			if bb == nil {
				var err error
				if bb, err = loadBusybox(o.busybox); err != nil {
					return err
				}
			}
		case "trixie":
			if o.trixieTar == "" {
				fmt.Printf("skip    %s (no -trixie-tar)\n", t.repo)
				continue
			}
		}
		b, err := build(t, bb, o)
		if err != nil {
			return fmt.Errorf("%s: %w", t.repo, err)
		}
		tg, dig, mt, err := b.taggable()
		if err != nil {
			return err
		}
		var refs []name.Tag
		for _, tag := range t.tags {
			ref, err := name.NewTag(o.registry+"/"+t.repo+":"+tag, name.Insecure)
			if err != nil {
				return err
			}
			refs = append(refs, ref)
			digests[ref.String()] = dig.String()
		}
		status := "built"
		if !o.noPush {
			if status, err = push(refs, tg, dig, o.force); err != nil {
				return fmt.Errorf("%s: %w", t.repo, err)
			}
		}
		for _, ref := range refs {
			fmt.Printf("%-7s %s %s\n", status, ref, dig)
		}
		if o.expectDir != "" {
			if err := writeExpect(o, t, refs, b, dig, mt); err != nil {
				return fmt.Errorf("%s: expectations: %w", t.repo, err)
			}
		}
	}
	if o.digests != "" {
		data, err := json.MarshalIndent(digests, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(o.digests, append(data, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// push writes the image or index under every tag whose current manifest
// digest differs from dig. It returns "pushed" or "present".
func push(refs []name.Tag, tg remote.Taggable, dig v1.Hash, force bool) (string, error) {
	opts := remoteOptions()
	var stale []name.Tag
	for _, ref := range refs {
		if !force {
			desc, err := remote.Head(ref, opts...)
			var terr *transport.Error
			switch {
			case err == nil && desc.Digest == dig:
				continue
			case err == nil, errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
			default:
				return "", fmt.Errorf("HEAD %s: %w", ref, err)
			}
		}
		stale = append(stale, ref)
	}
	if len(stale) == 0 {
		return "present", nil
	}
	for i, ref := range stale {
		var err error
		switch x := tg.(type) {
		case v1.ImageIndex:
			if i == 0 {
				err = remote.WriteIndex(ref, x, opts...)
			} else {
				err = remote.Tag(ref, x, opts...)
			}
		case v1.Image:
			if i == 0 {
				err = remote.Write(ref, x, opts...)
			} else {
				err = remote.Tag(ref, x, opts...)
			}
		}
		if err != nil {
			return "", fmt.Errorf("push %s: %w", ref, err)
		}
	}
	return "pushed", nil
}

func describe(bi *builtImage) (ExpectImage, error) {
	var ei ExpectImage
	ei.Platform = platformString(bi.platform)
	d, err := bi.img.Digest()
	if err != nil {
		return ei, err
	}
	ei.Digest = d.String()
	mt, err := bi.img.MediaType()
	if err != nil {
		return ei, err
	}
	ei.MediaType = string(mt)
	m, err := bi.img.Manifest()
	if err != nil {
		return ei, err
	}
	ei.ConfigDigest = m.Config.Digest.String()
	cf, err := bi.img.ConfigFile()
	if err != nil {
		return ei, err
	}
	ei.Cmd, ei.Env = cf.Config.Cmd, cf.Config.Env
	for i, l := range m.Layers {
		ei.Layers = append(ei.Layers, LayerInfo{
			Digest:    l.Digest.String(),
			DiffID:    cf.RootFS.DiffIDs[i].String(),
			MediaType: string(l.MediaType),
			Size:      l.Size,
		})
	}
	ei.Entries, ei.Skipped, err = referenceApply(bi.raws)
	return ei, err
}

func writeExpect(o options, t target, refs []name.Tag, b *built, dig v1.Hash, mt string) error {
	ex := Expect{Schema: 1, Repository: t.repo, Tags: t.tags, MediaType: mt, Digest: dig.String()}
	for _, r := range refs {
		ex.References = append(ex.References, r.String())
	}
	members := b.members
	if b.image != nil {
		members = []*builtImage{b.image}
	}
	for _, m := range members {
		ei, err := describe(m)
		if err != nil {
			return err
		}
		ex.Images = append(ex.Images, ei)
	}
	sort.SliceStable(ex.Images, func(i, j int) bool { return ex.Images[i].Platform < ex.Images[j].Platform })
	data, err := json.MarshalIndent(ex, "", " ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := os.MkdirAll(o.expectDir, 0755); err != nil {
		return err
	}
	for _, tag := range t.tags {
		p := filepath.Join(o.expectDir, strings.ReplaceAll(t.repo, "/", "_")+"_"+tag+".json")
		if err := writeFileAtomic(p, data); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces p only if its content differs.
func writeFileAtomic(p string, data []byte) error {
	if old, err := os.ReadFile(p); err == nil && string(old) == string(data) {
		return nil
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
