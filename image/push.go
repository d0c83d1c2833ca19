package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/devbox-dev/devbox/image/store"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PushResult describes a finished push.
type PushResult struct {
	Ref    string  // the stored image pushed
	Dest   string  // where it went
	Digest v1.Hash // its manifest digest (the same in the store and the registry)
	Size   int64   // compressed size of its config and layers
}

// Push uploads the stored image named src (store.Lookup) to dest, with
// the credentials, insecure-registry rules and transport of a pull (no
// mirror: a push goes to the registry named). Blobs the registry has are
// not sent again. Progress reports one Event per update, ID "push".
func Push(ctx context.Context, st *store.Store, src string, dest name.Reference, opts Options) (*PushResult, error) {
	if opts.Platform == nil {
		p := HostPlatform()
		opts.Platform = &p
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	unlockGC, err := st.GCLock(false)
	if err != nil {
		return nil, err
	}
	defer unlockGC()
	img, err := st.Lookup(src)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(img.ID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	m, err := st.Manifest(h)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w (hint: devbox verify checks the store)", img.Ref, err)
	}
	res := &PushResult{Ref: img.Ref, Digest: h, Size: m.Config.Size}
	for _, l := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if !st.HasBlob(l.Digest, l.Size) {
			return nil, fmt.Errorf("%s lacks its blob %s in the store (hint: pull the image again with devbox pull, or run devbox verify)", img.Ref, l.Digest)
		}
		res.Size += l.Size
	}
	res.Size -= m.Config.Size
	limg, err := layout.Path(st.OCIDir()).Image(h)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", img.Ref, err)
	}
	dest, err = opts.Registries.Origin(dest)
	if err != nil {
		return nil, err
	}
	res.Dest = FullName(dest)
	updates := make(chan v1.Update, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			if opts.Progress != nil && u.Error == nil {
				opts.Progress(Event{ID: "push", Kind: "image", State: "uploading", Total: u.Total, Done: u.Complete})
			}
		}
	}()
	ropts := append(opts.remote(ctx, dest.Context()), remote.WithProgress(updates), remote.WithJobs(opts.Jobs))
	err = remote.Write(dest, limg, ropts...)
	<-done
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, pushErr(res.Dest, dest.Context().RegistryStr(), err)
	}
	return res, nil
}

func pushErr(full, registry string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("pushing to %s: access denied (%s) (hint: log in with docker login or podman login %s)", full, shortErr(err), registry)
		}
	}
	msg := shortErr(err)
	if strings.Contains(msg, "http: server gave HTTP response to HTTPS client") {
		return fmt.Errorf("pushing to %s: %s (hint: the registry speaks plain HTTP: list it under [registries] insecure in %s)", full, msg, configHint())
	}
	return fmt.Errorf("pushing to %s: %s", full, msg)
}
