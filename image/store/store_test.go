package store

import (
	"testing"

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
