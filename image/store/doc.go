// Package store is devbox's content-addressed image store on disk.
//
// Layout under the store root (default $XDG_DATA_HOME/devbox):
//
//	oci/                 an OCI image layout (oci-layout, index.json,
//	                     blobs/sha256/…) that skopeo and umoci can read; each
//	                     pulled image is one index entry whose
//	                     org.opencontainers.image.ref.name is its full reference
//	layers/<chainID>/    one unpacked layer, an overlayfs lower directory,
//	                     owned by the user's subordinate ids (keep-id map)
//	layerinfo/<chainID>  the layer's completion marker (marker.go)
//	tmp/                 downloads and unpacks in progress (marked chattr +T
//	                     on ext2/3/4, see markTopDir)
//	locks/               flock files: store.lock for index.json and GC, one
//	                     per blob digest and per layer chain ID
//
// Every write is atomic: blobs are written to tmp/, verified against their
// digest and renamed into place while their lock is held; layers are
// unpacked into tmp/ and renamed into layers/; index.json is replaced by
// rename under store.lock. A process killed at any point leaves only tmp/
// debris, which the next command removes once no lock guards it.
//
// A pull unpacks a layer while its blob downloads: BlobFeed follows the
// blob's temporary file, and the unpack stage reads the data from a stream
// (StreamWriter, UnpackStream) in which the end of each layer's data
// certifies that its blob is stored and verified. The stage renames the
// layer into layers/ only after that end and after checking the layer's
// diff_id; on any failure it removes its temporary directory.
//
// GC (gc.go) is one mark-and-sweep collector: index entries, box records
// and run specs are its roots; a failed pull sweeps only what it created
// (Abandon). Verify (verify.go) rehashes blobs and checks layers' markers
// and images; Repair removes what is damaged.
//
// The store is the user's alone: Open refuses one that another user could
// change (owner.go) and creates what is missing 0700; removals and GC work
// relative to the store root opened once, following no symbolic link
// (remove.go). docs/security.md, "Records and the store", has the rule.
package store
