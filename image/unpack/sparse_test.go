package unpack

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawBlock builds one ustar header block.
func rawBlock(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "14540000000\x00")
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad(b []byte) []byte {
	if n := len(b) % 512; n != 0 {
		b = append(b, make([]byte, 512-n)...)
	}
	return b
}

// sparseTar returns a tar holding one PAX 0.1 sparse file of logical size
// size whose last byte is 'x'.
func sparseTar(name string, size int64) []byte {
	var recs strings.Builder
	for _, kv := range [][2]string{
		{"GNU.sparse.map", fmt.Sprintf("%d,1", size-1)},
		{"GNU.sparse.numblocks", "1"},
		{"GNU.sparse.size", fmt.Sprint(size)},
	} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec)
		for len(fmt.Sprint(n+len(fmt.Sprint(n)))) != len(fmt.Sprint(n)) {
			n++
		}
		n += len(fmt.Sprint(n))
		fmt.Fprintf(&recs, "%d%s", n, rec)
	}
	var out []byte
	out = append(out, rawBlock("PaxHeaders/"+name, 'x', int64(recs.Len()))...)
	out = append(out, pad([]byte(recs.String()))...)
	out = append(out, rawBlock(name, '0', 1)...)
	out = append(out, pad([]byte("x"))...)
	return append(out, make([]byte, 1024)...)
}

func TestApplySparse(t *testing.T) {
	root := newDir(t)
	const size = 1 << 30
	if _, err := Apply(root, bytes.NewReader(sparseTar("sparse", size)), testOptions(t)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "sparse")
	st := statT(t, p)
	if st.Size != size {
		t.Errorf("size %d, want %d", st.Size, size)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("sparse file takes %d bytes on disk", st.Blocks*512)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 2)
	if _, err := f.ReadAt(b, size-2); err != nil || string(b) != "\x00x" {
		t.Errorf("tail = %q, %v", b, err)
	}

	old := maxSparseExpansion
	maxSparseExpansion = 64 << 20
	defer func() { maxSparseExpansion = old }()
	_, err = Apply(newDir(t), bytes.NewReader(sparseTar("big", 1<<40)), testOptions(t))
	if err == nil || !strings.Contains(err.Error(), "sparse") {
		t.Errorf("err = %v, want sparse expansion limit", err)
	}
}
