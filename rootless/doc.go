// Package rootless gives devbox its user namespaces without privilege.
//
// Every process that must see the image's file owners (the unpacker, the box
// init) runs in a keep-id user namespace: the caller's own uid and gid appear
// unchanged inside, uid 0 inside is the first subordinate uid, and the rest of
// the subordinate range fills the other ids. The store is unpacked in that
// mapping once and boxes run in the very same mapping, so nothing is ever
// chowned twice.
//
// Such a map names subordinate ids, so only newuidmap/newgidmap may write it,
// and only once the child exists; by then the child has executed its program,
// and a process that executes as a non-root uid loses its capabilities. Start
// therefore carries the capabilities a new user namespace gives its first
// process across that exec as ambient capabilities:
//
//	P1 host CLI ──clone(NEWUSER|NEWNS|NEWPID|…), all caps ambient──▶ target
//	stage (devbox again), which blocks on the start pipe while P1 runs
//	newuidmap and newgidmap in parallel with the keep-id map; then the
//	target makes itself uid 0 and gid 0 of the namespace, arms its
//	parent-death signal again and empties its inheritable and ambient sets
//	(this package's init function, on the main thread).
//
// Without subordinate ids Go writes the one-line map 0 → caller itself and
// the target starts as uid 0 directly.
//
// Only plain data crosses the boundary: the stage name and the start
// descriptor travel in environment variables, argv as given, and extra file
// descriptors as 3, 4, ….
package rootless
