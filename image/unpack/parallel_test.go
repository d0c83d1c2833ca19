package unpack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestApplyParallelMatchesSequential extracts streams whose entries depend on
// each other (replacements, whiteouts, hard links and entries under the
// paths of files just handed to workers) with and without workers: the trees
// must be the same.
func TestApplyParallelMatchesSequential(t *testing.T) {
	big := strings.Repeat("b", maxJobSize+1)
	zeros := string(make([]byte, 3*holeMin+5))
	var many []tent
	for i := range 300 {
		many = append(many, reg(fmt.Sprintf("m/%d/f%d", i%7, i), strings.Repeat("x", i*37)))
	}
	cases := map[string][]tent{
		"nodes": {dir("usr/"), dir("usr/bin/"), reg("usr/bin/a", "a"), symlink("usr/bin/b", "a"),
			hardlink("usr/bin/c", "usr/bin/a"), reg("usr/bin/big", big), reg("usr/bin/sparse", zeros),
			reg("usr/bin/mixed", "head"+zeros+"tail"), tent{typ: '6', name: "run/fifo"}},
		"duplicates": {reg("f", "1"), reg("f", "2"), symlink("f", "x"), reg("f", "3"), symlink("s", "1"), symlink("s", "2")},
		"file replaces dir with children in flight": append(append([]tent{dir("d/")}, many...),
			reg("m", "now a file"), reg("d", "file")),
		"dir replaces file":        {reg("d", "f"), dir("d/"), reg("d/x", "x")},
		"whiteout of busy dir":     append(append([]tent{}, many...), reg(".wh.m", "")),
		"whiteout of busy file":    {reg("a/f", "x"), reg("a/.wh.f", ""), reg("a/f", "again")},
		"opaque in busy dir":       append(append([]tent{}, many...), reg("m/1/.wh..wh..opq", ""), reg("m/1/late", "l")),
		"hardlink to busy file":    {reg("a/f", "content"), hardlink("h", "a/f"), hardlink("a/g", "h"), reg("a/f", "new")},
		"hardlink over busy file":  {reg("t", "t"), reg("a/f", "x"), hardlink("a/f", "t")},
		"under busy symlink":       {symlink("l", "d"), dir("d/"), reg("l/x", "x")},
		"under busy file":          {reg("f", "x"), reg("f/g", "y")},
		"symlink then dir":         {symlink("l", "elsewhere"), dir("l/"), reg("l/x", "x")},
		"big file over busy file":  {reg("f", "small"), reg("f", big)},
		"implicit dirs":            {reg("a/b/c/d", "d"), reg("a/b/e", "e"), dir("a/b/"), reg("a/b/c/f", "f")},
		"read-only dir":            {dir("ro/"), reg("ro/f", "f"), {typ: '5', name: "ro", mode: 0o555}, reg("ro/g", "g")},
		"many files":               many,
		"dotdot":                   {reg("a/f", "x"), reg("a/../b", "y"), reg("../x", "z")},
		"whiteout then same name":  {reg("a/f", "1"), reg("a/.wh.f", ""), symlink("a/f", "t")},
		"symlink replaced by file": {symlink("s", "../outside/sentinel"), reg("s", "safe")},
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			data := buildTar(t, ents...)
			seq, par := newDir(t), newDir(t)
			opts := testOptions(t)
			seqOpts := opts
			seqOpts.Workers = 1
			seqSt, seqErr := Apply(seq, bytes.NewReader(data), seqOpts)
			for _, workers := range []int{0, 2, 4} {
				opts.Workers = workers
				dst := par
				if workers != 0 {
					dst = newDir(t)
				}
				st, err := Apply(dst, bytes.NewReader(data), opts)
				if (err == nil) != (seqErr == nil) || errors.Is(err, ErrUnsafePath) != errors.Is(seqErr, ErrUnsafePath) {
					t.Fatalf("workers %d: %v; sequential: %v", workers, err, seqErr)
				}
				if err != nil {
					continue
				}
				if st != seqSt {
					t.Errorf("workers %d: stats %+v, sequential %+v", workers, st, seqSt)
				}
				if d := diffTrees(tree(t, seq), tree(t, dst)); len(d) > 0 {
					t.Errorf("workers %d: trees differ:\n%s", workers, strings.Join(d, "\n"))
				}
			}
		})
	}
}

// TestApplyParallelMatchesSequentialImage compares both extractions of the
// tar named by $DEVBOX_UNPACK_TAR (a whole image's root filesystem).
func TestApplyParallelMatchesSequentialImage(t *testing.T) {
	path := os.Getenv("DEVBOX_UNPACK_TAR")
	if path == "" {
		t.Skip("set DEVBOX_UNPACK_TAR to a tar file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seq, par := newDir(t), newDir(t)
	opts := testOptions(t)
	opts.Logf = nil
	seqOpts := opts
	seqOpts.Workers = 1
	if _, err := Apply(seq, bytes.NewReader(data), seqOpts); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(par, bytes.NewReader(data), opts); err != nil {
		t.Fatal(err)
	}
	if d := diffTrees(tree(t, seq), tree(t, par)); len(d) > 0 {
		t.Errorf("trees differ:\n%s", strings.Join(d, "\n"))
	}
}

func TestWriteSparse(t *testing.T) {
	z := make([]byte, holeMin)
	for _, parts := range [][][]byte{
		{[]byte("abc")},
		{z},
		{z, z, []byte("x")},
		{[]byte("x"), z, z},
		{[]byte("x"), z[1:], z, []byte("y")},
		{z, []byte("mid"), z[3:], z},
	} {
		want := bytes.Join(parts, nil)
		p := newDir(t) + "/f"
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeSparse(int(f.Fd()), want); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("content of %d bytes differs (got %d bytes)", len(want), len(got))
		}
	}
}
