package cmdutil

import (
	"context"
	"fmt"
	"sync"

	"github.com/devbox-dev/devbox/cmd/config"
	"github.com/devbox-dev/devbox/cmd/iostreams"
	"github.com/devbox-dev/devbox/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// PullImage pulls one reference with progress on stderr and prints the
// pulled reference on stdout: devbox pull, and run, shell and create for a
// missing image.
func PullImage(ctx context.Context, f *Factory, ref string, plat *v1.Platform, quiet bool) (*image.Result, error) {
	ios := f.IOStreams
	st, err := f.Store()
	if err != nil {
		return nil, err
	}
	tab, err := f.Aliases()
	if err != nil {
		return nil, err
	}
	regs, err := f.Registry()
	if err != nil {
		return nil, err
	}
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	named, _, err := image.Resolve(ref, tab)
	if err != nil {
		return nil, err
	}
	if _, err := f.Mapping(); err != nil {
		return nil, err
	}
	rep := newReporter(ios, quiet || ios.Quiet)
	if !rep.quiet {
		fmt.Fprintf(ios.ErrOut, "Pulling %s\n", image.FullName(named))
	}
	res, err := image.Pull(ctx, st, named, image.Options{
		Platform:   plat,
		Registries: regs,
		Progress:   rep.event,
		Unpack:     f.Unpacker(st),
		Remove:     f.Remover(context.WithoutCancel(ctx), st),
		Limits:     cfg.Limits.Resolve(config.Path()),
	})
	rep.finish()
	if err != nil {
		return nil, image.SuggestAlias(ref, tab, err)
	}
	if !rep.quiet {
		fmt.Fprintf(ios.ErrOut, "Pulled %s: %d layer(s) downloaded (%s), %d unpacked, digest %s\n",
			res.Ref, res.Downloaded, HumanBytes(res.Bytes), res.Unpacked, res.Digest)
	}
	fmt.Fprintln(ios.Out, res.Ref)
	return res, nil
}

// reporter draws per-layer bars on a terminal and plain lines otherwise.
type reporter struct {
	ios   *iostreams.IOStreams
	quiet bool
	mu    sync.Mutex
	p     *mpb.Progress
	bars  map[string]*mpb.Bar
}

func newReporter(ios *iostreams.IOStreams, quiet bool) *reporter {
	r := &reporter{ios: ios, quiet: quiet, bars: map[string]*mpb.Bar{}}
	if !quiet && ios.ErrTTY {
		r.p = mpb.New(mpb.WithOutput(ios.ErrOut), mpb.WithWidth(40))
	}
	return r
}

func (r *reporter) event(e image.Event) {
	if r.quiet {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		switch e.State {
		case "resolved":
			fmt.Fprintf(r.ios.ErrOut, "  from %s\n", e.Info)
		case "exists":
			fmt.Fprintf(r.ios.ErrOut, "  layer %s already stored\n", e.ID)
		case "done":
			fmt.Fprintf(r.ios.ErrOut, "  layer %s downloaded (%s)\n", e.ID, HumanBytes(e.Total))
		case "unpacking":
			fmt.Fprintf(r.ios.ErrOut, "  layer %s unpacking\n", e.ID)
		}
		return
	}
	if e.Kind != "layer" {
		return
	}
	b := r.bars[e.ID]
	if b == nil {
		b = r.p.AddBar(max(e.Total, 1),
			mpb.PrependDecorators(decor.Name(e.ID+" "), decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncWidth)),
			mpb.AppendDecorators(decor.OnComplete(decor.Percentage(decor.WCSyncSpace), "done")),
		)
		r.bars[e.ID] = b
	}
	switch e.State {
	case "downloading":
		b.SetCurrent(e.Done)
	case "done", "exists":
		b.SetCurrent(max(e.Total, 1))
	}
}

func (r *reporter) finish() {
	r.mu.Lock()
	p := r.p
	for _, b := range r.bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	r.mu.Unlock()
	if p != nil {
		p.Wait()
	}
}
