// Package limits holds the bounds a pull puts on what a registry serves:
// the size of manifests, indexes and configs, the nesting of indexes, the
// number of layers, the uncompressed size of a layer and of an image, and
// the ratio of uncompressed to compressed bytes. Each is a key of the
// [limits] table of config.toml (docs/config.md); an image over one is
// refused with an Error that names the key.
package limits

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits are the bounds of one pull. A zero field means its default (see
// Resolve). The struct crosses to the unpack stage as JSON.
type Limits struct {
	DocumentSize     int64 `json:"documentSize,omitempty"`
	IndexDepth       int   `json:"indexDepth,omitempty"`
	Layers           int   `json:"layers,omitempty"`
	LayerSize        int64 `json:"layerSize,omitempty"`
	ImageSize        int64 `json:"imageSize,omitempty"`
	CompressionRatio int64 `json:"compressionRatio,omitempty"`
	// ConfigPath is the configuration file named in the hint of an Error.
	ConfigPath string `json:"configPath,omitempty"`
}

// The defaults.
const (
	DefaultDocumentSize     = 4 << 20 // containerd's bound on manifests
	DefaultIndexDepth       = 2       // an index may name indexes, which name images
	DefaultLayers           = 128     // overlayfs and Docker stop near 128 lower layers
	DefaultLayerSize        = 16 << 30
	DefaultImageSize        = 64 << 30
	DefaultCompressionRatio = 100

	// RatioFloor is how many uncompressed bytes a layer may reach before its
	// compression ratio is checked: small layers of zeros (an empty disk
	// image, a sparse file) compress far beyond any fixed ratio and are
	// harmless at that size.
	RatioFloor = 64 << 20
)

// Key names of config.toml, one table for the Error messages and the docs.
const (
	KeyDocumentSize     = "max_document_size"
	KeyIndexDepth       = "max_index_depth"
	KeyLayers           = "max_layers"
	KeyLayerSize        = "max_layer_size"
	KeyImageSize        = "max_image_size"
	KeyCompressionRatio = "max_compression_ratio"
)

// Default returns the default limits.
func Default() Limits { return Limits{}.Resolve() }

// Resolve returns l with every zero or negative field set to its default.
func (l Limits) Resolve() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.DocumentSize, DefaultDocumentSize)
	def(&l.LayerSize, DefaultLayerSize)
	def(&l.ImageSize, DefaultImageSize)
	def(&l.CompressionRatio, DefaultCompressionRatio)
	if l.IndexDepth <= 0 {
		l.IndexDepth = DefaultIndexDepth
	}
	if l.Layers <= 0 {
		l.Layers = DefaultLayers
	}
	return l
}

// Error is an image refused for going over a limit.
type Error struct {
	Subject string // what went over: "the manifest of x", "layer sha256:..."
	What    string // how, e.g. "is larger than", "unpacks to more than"
	Limit   string // the limit in human terms, e.g. "4 MiB"
	Key     string // the config.toml key that raises it
	Config  string // the configuration file, for the hint
}

func (e *Error) Error() string {
	cfg := e.Config
	if cfg == "" {
		cfg = "config.toml"
	}
	return fmt.Sprintf("%s %s %s, the limit set by %s (hint: if you trust the image, raise %s under [limits] in %s)",
		e.Subject, e.What, e.Limit, e.Key, e.Key, cfg)
}

// Over builds the Error for subject going over the limit named key.
func (l Limits) Over(subject, what, key string) *Error {
	var lim string
	switch key {
	case KeyDocumentSize:
		lim = FormatSize(l.DocumentSize)
	case KeyLayerSize:
		lim = FormatSize(l.LayerSize)
	case KeyImageSize:
		lim = FormatSize(l.ImageSize)
	case KeyIndexDepth:
		lim = strconv.Itoa(l.IndexDepth) + " level(s)"
	case KeyLayers:
		lim = strconv.Itoa(l.Layers) + " layers"
	case KeyCompressionRatio:
		lim = strconv.FormatInt(l.CompressionRatio, 10) + " times its compressed size"
	}
	return &Error{Subject: subject, What: what, Limit: lim, Key: key, Config: l.ConfigPath}
}

var units = []struct {
	suffix string
	mult   int64
}{
	{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"tb", 1e12}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3},
	{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10},
	{"b", 1}, {"", 1},
}

// ParseSize reads a byte count: a number with an optional unit (B, KiB,
// MiB, GiB, TiB; KB, MB, GB, TB in powers of ten; K, M, G, T as binary).
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, u := range units {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		num = strings.TrimSpace(num)
		if num == "" || strings.ContainsAny(num, "+-") {
			break
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			break
		}
		if n <= 0 || n > (1<<62)/u.mult {
			return 0, fmt.Errorf("size %q is out of range", s)
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("size %q is not a number of bytes with an optional unit such as 4MiB or 16GiB", s)
}

// FormatSize writes n in the largest binary unit that divides it, else in
// one decimal.
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult {
			if n%u.mult == 0 {
				return fmt.Sprintf("%d %s", n/u.mult, u.name)
			}
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u.mult), u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
