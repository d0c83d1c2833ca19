package limits

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"4MiB", 4 << 20, ""},
		{"4 MiB", 4 << 20, ""},
		{" 16gib ", 16 << 30, ""},
		{"1T", 1 << 40, ""},
		{"512k", 512 << 10, ""},
		{"100MB", 100e6, ""},
		{"2GB", 2e9, ""},
		{"300", 300, ""},
		{"300B", 300, ""},
		{"0", 0, "out of range"},
		{"-1MiB", 0, "not a number"},
		{"+1MiB", 0, "not a number"},
		{"1.5GiB", 0, "not a number"},
		{"lots", 0, "not a number"},
		{"", 0, "not a number"},
		{"MiB", 0, "not a number"},
		{"9999999999TiB", 0, "out of range"},
		{"1 PiB", 0, "not a number"},
	} {
		got, err := ParseSize(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error with %q", c.in, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{300: "300 bytes", 4 << 20: "4 MiB", 1536: "1.5 KiB", 64 << 30: "64 GiB", 1 << 40: "1 TiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestResolveAndError(t *testing.T) {
	l := Limits{Layers: 7, LayerSize: -1}.Resolve()
	if l.Layers != 7 || l.LayerSize != DefaultLayerSize || l.DocumentSize != DefaultDocumentSize || l.IndexDepth != DefaultIndexDepth ||
		l.ImageSize != DefaultImageSize || l.CompressionRatio != DefaultCompressionRatio {
		t.Errorf("Resolve = %+v", l)
	}
	l.ConfigPath = "/home/u/.config/devbox/config.toml"
	for key, want := range map[string]string{
		KeyDocumentSize:     "x is larger than 4 MiB, the limit set by max_document_size (hint: if you trust the image, raise max_document_size under [limits] in /home/u/.config/devbox/config.toml)",
		KeyLayers:           "x is larger than 7 layers, the limit set by max_layers",
		KeyIndexDepth:       "x is larger than 2 level(s), the limit set by max_index_depth",
		KeyCompressionRatio: "x is larger than 100 times its compressed size, the limit set by max_compression_ratio",
		KeyLayerSize:        "16 GiB, the limit set by max_layer_size",
		KeyImageSize:        "64 GiB, the limit set by max_image_size",
	} {
		if got := l.Over("x", "is larger than", key).Error(); !strings.Contains(got, want) || strings.Contains(got, "\n") {
			t.Errorf("Over(%s) = %q, want %q", key, got, want)
		}
	}
	if got := (Limits{}).Resolve().Over("x", "is", KeyLayers).Error(); !strings.Contains(got, "in config.toml)") {
		t.Errorf("without a config path: %q", got)
	}
}
