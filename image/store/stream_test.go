package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/devbox-dev/devbox/image/limits"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/image/unpack"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func digest(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// testLayer returns a gzip layer holding files name -> content, and its
// diff ID.
func testLayer(t *testing.T, files map[string]string) (blob []byte, diffID v1.Hash) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb.Bytes())
	zw.Close()
	return gz.Bytes(), digest(tb.Bytes())
}

func openTestStore(t *testing.T) *Store {
	t.Helper()
	st, err := Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func job(blob []byte, diffID v1.Hash) UnpackJob {
	return UnpackJob{Chain: diffID, DiffID: diffID, Blob: digest(blob)}
}

func tmpEntries(t *testing.T, st *Store) []string {
	ents, err := os.ReadDir(st.TmpDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestStreamFrames(t *testing.T) {
	jobs := [][]byte{[]byte("first"), nil, bytes.Repeat([]byte("0123456789"), maxFrame/5+7)}
	var buf bytes.Buffer
	w := &StreamWriter{W: &buf}
	for _, j := range jobs {
		// In pieces of odd sizes.
		for p := j; len(p) > 0; {
			n := min(len(p), 333333)
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.EndJob(); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(buf.Bytes())
	for i, want := range jobs {
		got, err := io.ReadAll(&jobReader{r: r})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("job %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
		}
	}
	// A stream cut anywhere before a job's end frame fails.
	for _, cut := range []int{0, 2, 4, 9, 12} {
		jr := &jobReader{r: bytes.NewReader(buf.Bytes()[:cut])}
		if _, err := io.ReadAll(jr); !errors.Is(err, errStreamEnded) {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
	// Oversized frames are refused.
	if _, err := io.ReadAll(&jobReader{r: bytes.NewReader([]byte{0xff, 0, 0, 0})}); err == nil {
		t.Error("oversized frame accepted")
	}
}

// slowReader returns its data in small pieces with pauses, and fails at the
// end with err if it is not nil.
type slowReader struct {
	data []byte
	err  error
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		return 0, io.EOF
	}
	time.Sleep(time.Millisecond)
	n := copy(p[:min(len(p), 1000)], s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestBlobFeed(t *testing.T) {
	st := openTestStore(t)
	data := bytes.Repeat([]byte("blob data "), 5000)
	h := digest(data)

	// Readers see the bytes while they are written, and the end once the
	// blob is stored.
	feed := NewBlobFeed()
	defer feed.Close()
	var wg sync.WaitGroup
	got := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = io.ReadAll(feed.Reader())
		}()
	}
	if wrote, err := st.WriteBlobFeed(h, int64(len(data)), &slowReader{data: data}, feed); !wrote || err != nil {
		t.Fatalf("WriteBlobFeed: %v %v", wrote, err)
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], data) {
			t.Errorf("reader %d: %d bytes, %v", i, len(got[i]), errs[i])
		}
	}
	// A blob already stored feeds from the store.
	feed2 := NewBlobFeed()
	defer feed2.Close()
	if wrote, err := st.WriteBlobFeed(h, int64(len(data)), strings.NewReader("unused"), feed2); wrote || err != nil {
		t.Fatalf("second WriteBlobFeed: %v %v", wrote, err)
	}
	if b, err := io.ReadAll(feed2.Reader()); err != nil || !bytes.Equal(b, data) {
		t.Errorf("stored blob feed: %d bytes, %v", len(b), err)
	}

	// A wrong digest fails the readers, even after all the bytes came.
	bad := append([]byte{}, data...)
	bad[len(bad)-1] ^= 1
	feed3 := NewBlobFeed()
	defer feed3.Close()
	h3 := digest(append(data, 'x'))
	done := make(chan error)
	go func() {
		_, err := io.ReadAll(feed3.Reader())
		done <- err
	}()
	if _, err := st.WriteBlobFeed(h3, int64(len(bad)), bytes.NewReader(bad), feed3); err == nil {
		t.Fatal("digest mismatch accepted")
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("reader of a corrupt blob: %v", err)
	}
	if st.HasBlob(h3, -1) || len(tmpEntries(t, st)) != 0 {
		t.Errorf("corrupt blob kept: %v", tmpEntries(t, st))
	}
	// A failed download fails the readers.
	feed4 := NewBlobFeed()
	defer feed4.Close()
	go func() {
		_, err := io.ReadAll(feed4.Reader())
		done <- err
	}()
	netErr := errors.New("connection reset")
	if _, err := st.WriteBlobFeed(h3, -1, &slowReader{data: data[:3000], err: netErr}, feed4); !errors.Is(err, netErr) {
		t.Fatalf("WriteBlobFeed: %v", err)
	}
	if err := <-done; !errors.Is(err, netErr) {
		t.Errorf("reader of a failed download: %v", err)
	}
}

func TestUnpackStream(t *testing.T) {
	blob1, diff1 := testLayer(t, map[string]string{"a": "one", "d/b": "two"})
	blob2, diff2 := testLayer(t, map[string]string{"c": "three"})
	opts := unpack.Options{IgnoreChownErrors: true}

	t.Run("ok", func(t *testing.T) {
		st := openTestStore(t)
		j1, j2 := job(blob1, diff1), job(blob2, diff2)
		j2.Chain = ChainIDs([]v1.Hash{diff1, diff2})[1]
		var buf bytes.Buffer
		w := &StreamWriter{W: &buf}
		w.Write(blob1)
		w.EndJob()
		w.Write(blob2)
		w.EndJob()
		n, err := st.UnpackStream([]UnpackJob{j1, j2}, &buf, opts, limits.Limits{})
		if err != nil || n != 2 {
			t.Fatalf("UnpackStream: %d, %v", n, err)
		}
		if b, _ := os.ReadFile(filepath.Join(st.LayerDir(j1.Chain), "d/b")); string(b) != "two" {
			t.Errorf("d/b = %q", b)
		}
		// A layer present already is skipped, its data read past.
		buf.Reset()
		w.Write(blob1)
		w.EndJob()
		w.Write(blob2)
		w.EndJob()
		if n, err := st.UnpackStream([]UnpackJob{j1, j2}, &buf, opts, limits.Limits{}); err != nil || n != 0 || buf.Len() != 0 {
			t.Errorf("second UnpackStream: %d, %v, %d bytes left", n, err, buf.Len())
		}
	})

	// The layer is stored only after the end frame, and not at all if the
	// stream ends without it, even with every byte of the blob sent.
	t.Run("waits for the end frame", func(t *testing.T) {
		st := openTestStore(t)
		j := job(blob1, diff1)
		pr, pw := io.Pipe()
		done := make(chan error)
		go func() {
			_, err := st.UnpackStream([]UnpackJob{j}, pr, opts, limits.Limits{})
			done <- err
		}()
		w := &StreamWriter{W: pw}
		w.Write(blob1)
		time.Sleep(200 * time.Millisecond)
		if st.HasLayer(j.Chain) {
			t.Fatal("layer stored before its blob was certified")
		}
		pw.Close()
		if err := <-done; !errors.Is(err, errStreamEnded) {
			t.Errorf("UnpackStream: %v", err)
		}
		if st.HasLayer(j.Chain) || len(tmpEntries(t, st)) != 0 {
			t.Errorf("layer kept: %v", tmpEntries(t, st))
		}
	})

	t.Run("truncated", func(t *testing.T) {
		st := openTestStore(t)
		var buf bytes.Buffer
		(&StreamWriter{W: &buf}).Write(blob1[:len(blob1)/2])
		if _, err := st.UnpackStream([]UnpackJob{job(blob1, diff1)}, &buf, opts, limits.Limits{}); !errors.Is(err, errStreamEnded) {
			t.Errorf("UnpackStream: %v", err)
		}
		if len(tmpEntries(t, st)) != 0 {
			t.Errorf("leftovers: %v", tmpEntries(t, st))
		}
	})

	t.Run("diff_id mismatch", func(t *testing.T) {
		st := openTestStore(t)
		j := job(blob1, diff2)
		var buf bytes.Buffer
		w := &StreamWriter{W: &buf}
		w.Write(blob1)
		w.EndJob()
		if _, err := st.UnpackStream([]UnpackJob{j}, &buf, opts, limits.Limits{}); err == nil || !strings.Contains(err.Error(), "diff_id") {
			t.Errorf("UnpackStream: %v", err)
		}
		if st.HasLayer(j.Chain) || len(tmpEntries(t, st)) != 0 {
			t.Errorf("layer kept: %v", tmpEntries(t, st))
		}
	})
}

// TestReadAhead reads through aheadReader with reads of many sizes and stops
// one midway.
func TestReadAhead(t *testing.T) {
	data := make([]byte, 5*aheadChunk+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	a := readAhead(bytes.NewReader(data))
	var got []byte
	buf := make([]byte, 100000)
	for i := 1; ; i++ {
		n, err := a.Read(buf[:i*997%len(buf)+1])
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	a.close()
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, want %d", len(got), len(data))
	}
	a = readAhead(bytes.NewReader(data))
	a.Read(buf)
	a.close()
	e := errors.New("boom")
	a = readAhead(io.MultiReader(bytes.NewReader(data[:1000]), &slowReader{err: e}))
	if b, err := io.ReadAll(a); len(b) != 1000 || err != e {
		t.Errorf("read %d bytes, %v", len(b), err)
	}
	a.close()
}
