package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// TestTmpIsTopDir: on ext2/3/4, Open marks tmp/ with chattr's "T".
func TestTmpIsTopDir(t *testing.T) {
	st := openTestStore(t)
	fd, err := unix.Open(st.TmpDir(), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Skipf("no inode flags here: %v", err)
	}
	var sfs unix.Statfs_t
	if unix.Fstatfs(fd, &sfs) == nil && sfs.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("not ext2/3/4 (%#x)", sfs.Type)
	}
	if flags&fsTopDirFlag == 0 {
		t.Errorf("tmp/ flags %#x lack FS_TOPDIR_FL", flags)
	}
	// Idempotent.
	if _, err := Open(st.Root); err != nil {
		t.Fatal(err)
	}
}

// TestReadBlobNoFollow: a manifest or config blob is read only as a
// regular file of the store: a link (to a file elsewhere, to /dev/zero)
// or a fifo planted in its place is an error at once.
func TestReadBlobNoFollow(t *testing.T) {
	st := openTestStore(t)
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	p := st.BlobPath(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte(`{"schemaVersion":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		plant func() error
		ok    bool
	}{
		{"regular", func() error { return os.WriteFile(p, []byte(`{"schemaVersion":2}`), 0o600) }, true},
		{"link elsewhere", func() error { return os.Symlink(outside, p) }, false},
		{"link to /dev/zero", func() error { return os.Symlink("/dev/zero", p) }, false},
		{"fifo", func() error { return unix.Mkfifo(p, 0o600) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(p)
			if err := tc.plant(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := st.ReadBlob(h)
				done <- err
			}()
			select {
			case err := <-done:
				if (err == nil) != tc.ok {
					t.Errorf("ReadBlob: %v, want ok %v", err, tc.ok)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ReadBlob still reading after 10 s")
			}
		})
	}
}

// TestIndexNoFollow: index.json is read the same way: a fifo or a link
// to /dev/zero in its place is an error at once, never a wait.
func TestIndexNoFollow(t *testing.T) {
	st := openTestStore(t)
	p := st.indexPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, plant := range []func() error{
		func() error { return os.Symlink("/dev/zero", p) },
		func() error { return unix.Mkfifo(p, 0o600) },
	} {
		os.Remove(p)
		if err := plant(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := st.Index()
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("Index read a planted %s", p)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Index still reading after 10 s")
		}
	}
	os.Remove(p)
	if im, err := st.Index(); err != nil || len(im.Manifests) != 0 {
		t.Errorf("no index.json: %v %v, want an empty index", im, err)
	}
}
