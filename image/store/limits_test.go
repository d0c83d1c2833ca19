package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/image/limits"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestSizeGuard: the logical size of a layer (stream plus sparse holes)
// against the layer, image and ratio limits.
func TestSizeGuard(t *testing.T) {
	lim := limits.Limits{LayerSize: 1 << 30, ImageSize: 2 << 30, CompressionRatio: 10}.Resolve()
	const mib = 1 << 20
	for _, c := range []struct {
		name                          string
		prior, stream, sparse, packed int64
		key                           string // "" = within the limits
	}{
		{"small", 0, 10 * mib, 0, 1 * mib, ""},
		{"high ratio below the floor", 0, 60 * mib, 0, 1, ""},
		{"ratio over the floor", 0, 65 * mib, 0, 1 * mib, limits.KeyCompressionRatio},
		{"ratio from sparse holes", 0, 1 * mib, 100 * mib, 1 * mib, limits.KeyCompressionRatio},
		{"ratio within", 0, 100 * mib, 0, 11 * mib, ""},
		{"layer size", 0, 1<<30 + 1, 0, 1 << 30, limits.KeyLayerSize},
		{"layer size from sparse holes", 0, 1 * mib, 1 << 30, 1 << 30, limits.KeyLayerSize},
		{"image size", 1800 * mib, 300 * mib, 0, 300 * mib, limits.KeyImageSize},
		{"image size exactly", 1800 * mib, 248 * mib, 0, 248 * mib, ""},
	} {
		g := &sizeGuard{lim: lim, blob: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, prior: c.prior}
		g.stream.Store(c.stream)
		g.sparse.Store(c.sparse)
		g.packed.Store(c.packed)
		err := g.check()
		var le *limits.Error
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.key != "" && (!errors.As(err, &le) || le.Key != c.key):
			t.Errorf("%s: err = %v, want the %s limit", c.name, err, c.key)
		}
	}
}
