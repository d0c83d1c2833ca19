// Package unpack extracts one uncompressed OCI/Docker image layer (a tar
// stream) into a directory of its own, in the format of an overlayfs lower
// directory. The per-layer directories are later stacked by mounting
// overlayfs with the "userxattr" option inside a user namespace; this
// package knows nothing about namespaces, compression or registries.
//
// # On-disk format
//
// Regular files, directories, symbolic links, hard links and FIFOs are
// created as they appear in the tar, with owner (lchown to the header
// uid/gid), permission bits including setuid, setgid and sticky, access and
// modification times, and the extended attributes carried in PAX records
// "SCHILY.xattr.NAME" for NAME "user.*" (except "user.overlay.*", which
// overlayfs itself interprets) and "security.capability". Other attributes
// (trusted.*, security.selinux, ...) are dropped. Device nodes are skipped:
// they cannot be created without privilege on the host.
//
// The layer's deletions are translated from the OCI tar form to the overlayfs
// form:
//
//   - an entry DIR/.wh.NAME (a whiteout) becomes a character device with
//     device number 0:0 named DIR/NAME;
//   - an entry DIR/.wh..wh..opq (an opaque marker) sets the extended
//     attribute user.overlay.opaque="y" on DIR, hiding the content of DIR in
//     the layers below;
//   - other DIR/.wh..wh.* names (aufs metadata such as .wh..wh.plnk) are
//     skipped.
//
// A directory that replaces a whiteout of the same layer is made opaque, so
// that the layers below stay hidden as the tar intended.
//
// A hard link whose target is not in the layer is resolved in the lower
// layers given by Options.Lowers, honouring their whiteouts and opaque
// directories: the target (content, owner, mode, times, xattrs, and the
// metadata of the missing parent directories) is first copied into this
// layer, as overlayfs copy-up would, and then linked.
//
// Directory permissions and times are applied after the last entry, deepest
// directory first, so that writing into a directory does not move its mtime
// and a read-only directory does not block the entries after it.
//
// # Threat model
//
// The tar stream is hostile. Apply guarantees that it reads or writes nothing
// outside the destination directory (apart from reading Options.Lowers to
// resolve hard links), whatever the names, link targets and order of the
// entries:
//
//   - names are cleaned lexically (leading "/" and "./" removed, "a/../b"
//     becomes "b"); a name that climbs above the root after cleaning fails
//     with ErrUnsafePath;
//   - every operation is done with *at system calls relative to a directory
//     file descriptor reached from the root one component at a time with
//     O_NOFOLLOW, and on a single final component, never on a path string:
//     a symbolic link is never followed, and an entry whose parent path (or a
//     hard link whose target path) goes through a symbolic link fails with
//     ErrUnsafePath, whether the link points inside the layer or not;
//   - the final component is never followed either: a new entry replaces an
//     existing symbolic link (or file) rather than writing through it, and
//     metadata calls use AT_SYMLINK_NOFOLLOW or a file descriptor;
//   - symbolic link targets are stored verbatim and never interpreted here
//     (an absolute target is legitimate: it is resolved inside the container);
//   - hard link targets are cleaned and resolved like names;
//   - whiteout and opaque markers are resolved like names, and a whiteout for
//     ".", ".." or "" is rejected.
//
// An error stops the extraction and leaves a partly extracted directory
// behind, which the caller should remove.
package unpack
