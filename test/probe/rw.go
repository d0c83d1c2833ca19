package main

// probe rw DIR NAME: as root with CAP_SYS_ADMIN in the box, try every way
// to make the read-only mount at DIR writable and append to DIR/NAME:
// a bind remount without "ro", mount_setattr clearing the read-only flag,
// a fresh bind of DIR remounted rw, a detached clone of it with the flag
// cleared, and unmounting DIR. Prints one "KEY: result" line each and
// "wrote: PATH" for every write that went through. Run from init, before
// main's switch, so that main.go's list needs no change.

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

func init() {
	if len(os.Args) < 4 || os.Args[1] != "rw" {
		return
	}
	rwAttack(os.Args[2], os.Args[3])
	os.Exit(0)
}

func rwAttack(dir, name string) {
	try := func(p string) {
		f, err := os.OpenFile(filepath.Join(p, name), os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			_, err = f.WriteString("owned by the box\n")
			f.Close()
		}
		if err == nil {
			fmt.Printf("wrote: %s\n", filepath.Join(p, name))
		}
	}
	// Mounting works at all here (the attack is not void).
	os.MkdirAll("/tmp/rw-probe", 0o755)
	result("tmpfs", unix.Mount("none", "/tmp/rw-probe", "tmpfs", 0, ""))
	unix.Unmount("/tmp/rw-probe", unix.MNT_DETACH)

	result("remount rw", unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND, ""))
	try(dir)
	result("mount_setattr -ro", unix.MountSetattr(unix.AT_FDCWD, dir, unix.AT_RECURSIVE, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}))
	try(dir)

	other := "/tmp/rw-probe-bind"
	os.MkdirAll(other, 0o755)
	err := unix.Mount(dir, other, "", unix.MS_BIND|unix.MS_REC, "")
	result("bind", err)
	if err == nil {
		result("bind remount rw", unix.Mount("", other, "", unix.MS_REMOUNT|unix.MS_BIND, ""))
		try(other)
	}

	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.AT_RECURSIVE)
	result("open_tree", err)
	if err == nil {
		result("clone mount_setattr -ro", unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}))
		clone := "/tmp/rw-probe-clone"
		os.MkdirAll(clone, 0o755)
		result("move clone", unix.MoveMount(fd, "", unix.AT_FDCWD, clone, unix.MOVE_MOUNT_F_EMPTY_PATH))
		try(clone)
	}

	result("umount", unix.Unmount(dir, unix.MNT_DETACH))
	try(dir)
}
