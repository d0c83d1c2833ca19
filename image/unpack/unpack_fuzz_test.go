package unpack

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The fuzz input is either a raw tar ("T" then the tar bytes) or a script of
// up to 64 lines "TYPE NAME [ARG]" turned into a tar. The seeds are scripts:
// mutating checksummed 512-byte tar headers rarely gets past archive/tar, and
// the fuzzer's minimization, quadratic in the input size, stalls on raw tars
// (the tar format itself is exercised by the unit tests).
//
//	f NAME [BODY]   regular file
//	d NAME [MODE]   directory, octal mode
//	l NAME TARGET   symbolic link
//	h NAME TARGET   hard link
//	p NAME          FIFO
//	c NAME          character device
//	x NAME [VALUE]  regular file with xattrs user.x and user.overlay.opaque
func fuzzTar(t testing.TB, data []byte) []byte {
	if len(data) > 0 && data[0] == 'T' {
		return data[1:]
	}
	var ents []tent
	for i, line := range strings.Split(string(data), "\n") {
		if i >= 64 {
			break
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) < 2 || f[0] == "" {
			continue
		}
		arg := ""
		if len(f) == 3 {
			arg = f[2]
		}
		e := tent{name: f[1]}
		switch f[0] {
		case "f":
			e.typ, e.body = tar.TypeReg, arg
		case "d":
			e.typ = tar.TypeDir
			if m, err := strconv.ParseInt(arg, 8, 64); err == nil {
				e.mode = m & 0o7777
			}
		case "l":
			e.typ, e.link = tar.TypeSymlink, arg
		case "h":
			e.typ, e.link = tar.TypeLink, arg
		case "p":
			e.typ = tar.TypeFifo
		case "c":
			e.typ, e.major, e.minor = tar.TypeChar, 1, 3
		case "x":
			e.typ, e.body = tar.TypeReg, arg
			e.xattrs = map[string]string{"user.x": arg, "user.overlay.opaque": "y", "trusted.x": arg}
		default:
			continue
		}
		ents = append(ents, e)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: e.mode, ModTime: testTime,
			Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if hdr.Mode == 0 && e.typ != tar.TypeDir {
			hdr.Mode = 0o644
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords[paxXattrPrefix+k] = v
		}
		if tw.WriteHeader(hdr) != nil {
			continue // names the tar format cannot hold
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return buf.Bytes()
}

func FuzzApply(f *testing.F) {
	for _, s := range []string{
		"d usr/ 755\nd usr/bin/\nf usr/bin/a hello\nl usr/bin/b a\nh usr/c usr/bin/a\np run/p\nc dev/null",
		"f .wh.x\nd o/\nf o/.wh..wh..opq\nf o/.wh..wh.plnk\nf a\nd a/\nf a/b\nf a\nx xa v",
		"h h d/f\nh i esc/sentinel\nh j abs/etc/passwd",
		"f ../x pwned\nf a/../../x pwned\nf /../outside/sentinel pwned",
		"l l /\nf l/x pwned",
		"l l ../outside\nf l/sentinel pwned\nf l/new pwned",
		"l l ../outside\nh h l/sentinel\nh g ../outside/sentinel",
		"f ../.wh.sentinel\nl l ../outside\nf l/.wh.sentinel\nf l/.wh..wh..opq",
		"l l ../outside\nd l/ 700\nd l 0\nf l/x",
		"d ro/ 555\nd ro/sub/ 0\nf ro/sub/f x\nd ./ 700",
		"l s ../outside/sentinel\nh h s\nf s x\nl t ../outside\nf .wh.t",
		"d ./ 0\nd a/ 0\nd a/b/ 555\nf a/b/f x\nd a/ 1777\nd c/ 2755",
	} {
		f.Add([]byte(s))
	}

	old := maxSparseExpansion
	maxSparseExpansion = 256 << 20
	defer func() { maxSparseExpansion = old }()

	// One environment per fuzzing process; the root is recreated per input.
	tmp, root, opts := hostileEnv(f)
	opts.Logf = nil
	opts.IgnoreChownErrors = true
	// tmp itself is left out: recreating the root changes its mtime.
	outside := func(t testing.TB) map[string]nodeInfo {
		m := snapshot(t, tmp, root)
		delete(m, tmp)
		return m
	}
	before := outside(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2<<10 {
			return // keep executions and minimizations (quadratic in size) fast
		}
		resetDir(t, root)
		Apply(root, bytes.NewReader(fuzzTar(t, data)), opts)
		if d := diffSnapshots(before, outside(t)); len(d) > 0 {
			t.Fatalf("outside of the root changed:\n%s", strings.Join(d, "\n"))
		}
		// The root itself must still be a directory.
		if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
			t.Fatalf("root replaced: %v %v", fi, err)
		}
	})
}

// resetDir makes dir an empty directory, whatever Apply left in it.
func resetDir(t testing.TB, dir string) {
	chmodDirs(dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
