//go:build linux

// Package mount describes and applies the mounts that assemble a box: a plan
// is a list of Mount values (plain data, computed by runtime.Plan and
// covered by table tests) and Apply carries out one of them.
//
// Every target is a path inside the box and is resolved inside the box's
// root (openat2 with RESOLVE_IN_ROOT): a symbolic link in the image, however
// it is written, can never make a mount, a created directory or a created
// file land outside the root. The mount itself is made on /proc/self/fd/N of
// the O_PATH descriptor of the resolved target, never on a joined path.
package mount

import (
	"fmt"
	"strings"
)

// Kind says what the executor does for one Mount.
type Kind uint8

const (
	// Rootfs assembles the box's root filesystem, Target "/": an overlay of
	// Overlay's directories (userxattr), or one of the fallbacks. The
	// runtime applies it, not Apply.
	Rootfs Kind = iota + 1
	// Fresh mounts a new instance of filesystem Type on Target, a directory
	// created when missing.
	Fresh
	// Bind bind-mounts Source on Target. Target is created as a directory
	// or an empty file, after Source's type. MS_RDONLY in Flags makes the
	// bind read-only (recursively with MS_REC).
	Bind
	// Symlink creates Target as a symbolic link to Source.
	Symlink
	// Pivot makes the assembled root the root of the process
	// (pivot_root); the runtime applies it. Before it Sources are host
	// paths, after it paths inside the box.
	Pivot
	// Mask hides Target: /dev/null is bound over a file, an empty
	// read-only tmpfs over a directory. A missing Target is skipped.
	Mask
	// ReadOnly binds Target onto itself and makes the bind read-only. A
	// missing Target is skipped.
	ReadOnly
)

var kindNames = [...]string{Rootfs: "rootfs", Fresh: "fresh", Bind: "bind", Symlink: "symlink", Pivot: "pivot", Mask: "mask", ReadOnly: "readonly"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Mount is one step of a box's mount plan.
type Mount struct {
	Kind     Kind
	Type     string  // filesystem type (Rootfs, Fresh)
	Source   string  // mount source: a path for Bind, the link text for Symlink, a name for Fresh
	Target   string  // absolute path inside the box
	Flags    uintptr // MS_* flags
	Data     string  // filesystem options
	Optional bool    // Bind: skip silently when Source does not exist
	// Ident, when set, is the device and inode Source had when the user
	// named it (a volume at create): Bind then opens Source without
	// following any symbolic link and refuses another file.
	Ident   *Ident
	Overlay *Overlay
}

// Ident is a file's device and inode number.
type Ident struct {
	Dev uint64
	Ino uint64
}

// Overlay names the directories of the box's root filesystem (host paths).
type Overlay struct {
	Lower  []string // layer directories, top-most first
	Upper  string
	Work   string
	Merged string // where the overlay is mounted
	Copy   string // the fallback: a copy of the merged layers
	// Volatile skips syncing the upper filesystem (an ephemeral box).
	Volatile bool
}

// OverlayData returns the overlayfs option string for o, without userxattr.
// It is only valid when Plain(o) holds.
func OverlayData(o *Overlay) string {
	return "lowerdir=" + strings.Join(o.Lower, ":") + ",upperdir=" + o.Upper + ",workdir=" + o.Work
}

// Plain reports whether o's paths can be written in a mount option string
// as they are (no ',', ':', '\\' or newline).
func Plain(o *Overlay) bool {
	for _, p := range append([]string{o.Upper, o.Work}, o.Lower...) {
		if strings.ContainsAny(p, ",:\\\n") {
			return false
		}
	}
	return true
}

func (m Mount) String() string {
	var b strings.Builder
	b.WriteString(m.Kind.String())
	if m.Type != "" {
		b.WriteString(" " + m.Type)
	}
	if m.Source != "" {
		b.WriteString(" " + m.Source)
	}
	if m.Target != "" {
		b.WriteString(" -> " + m.Target)
	}
	if f := FlagString(m.Flags); f != "" {
		b.WriteString(" [" + f + "]")
	}
	if m.Data != "" {
		b.WriteString(" " + m.Data)
	}
	if m.Optional {
		b.WriteString(" (optional)")
	}
	return b.String()
}
