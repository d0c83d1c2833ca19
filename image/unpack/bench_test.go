package unpack

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestThroughput extracts the tar named by $DEVBOX_UNPACK_TAR (for example
// one made with `tar -C /usr -cf /tmp/usr.tar .`) and logs the rate.
func TestThroughput(t *testing.T) {
	path := os.Getenv("DEVBOX_UNPACK_TAR")
	var data []byte
	want := -1
	if path == "" {
		// Without a real tar, a generated one: 20 directories of 20 files.
		data, want = syntheticTar(t, 20, 20), 20+20*20
	} else {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		dir := newDir(t)
		var r0, r1 unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &r0)
		start := time.Now()
		st, err := Apply(dir, bytes.NewReader(data), testOptions(t))
		d := time.Since(start)
		unix.Getrusage(unix.RUSAGE_SELF, &r1)
		if err != nil {
			t.Fatal(err)
		}
		cpu := func(a, b unix.Timeval) float64 { return float64(b.Nano()-a.Nano()) / 1e9 }
		n := st.Files + st.Dirs + st.Symlinks + st.Hardlinks
		if want >= 0 && n != want {
			t.Fatalf("extracted %d entries, want %d (%+v)", n, want, st)
		}
		t.Logf("%d entries, %.1f MB of tar in %v (CPU: user %.2fs, sys %.2fs): %.0f entries/s, %.0f MB/s (%+v)",
			n, float64(len(data))/1e6, d.Round(time.Millisecond), cpu(r0.Utime, r1.Utime), cpu(r0.Stime, r1.Stime),
			float64(n)/d.Seconds(), float64(len(data))/1e6/d.Seconds(), st)
	}
}

// BenchmarkApply extracts a synthetic layer of 2000 files (about 40 MB).
func BenchmarkApply(b *testing.B) {
	var ents []tent
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB
	for d := 0; d < 20; d++ {
		ents = append(ents, dir(fmt.Sprintf("d%d/", d)))
		for f := 0; f < 100; f++ {
			size := (f * 7919) % len(body)
			ents = append(ents, reg(fmt.Sprintf("d%d/f%d", d, f), string(body[:size])))
		}
		ents = append(ents, symlink(fmt.Sprintf("d%d/l", d), "f0"), hardlink(fmt.Sprintf("d%d/h", d), fmt.Sprintf("d%d/f1", d)))
	}
	data := buildTar(b, ents...)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := newDir(b)
		b.StartTimer()
		if _, err := Apply(dir, bytes.NewReader(data), testOptions(b)); err != nil {
			b.Fatal(err)
		}
	}
}

// syntheticTar builds a layer of dirs directories holding files files each.
func syntheticTar(t *testing.T, dirs, files int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := bytes.Repeat([]byte("devbox "), 1000)
	for d := 0; d < dirs; d++ {
		name := fmt.Sprintf("d%02d/", d)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < files; f++ {
			h := &tar.Header{Name: fmt.Sprintf("%sf%03d", name, f), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write(body)
		}
	}
	tw.Close()
	return buf.Bytes()
}
