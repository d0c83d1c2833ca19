// Package rootless gives devbox its user namespaces without privilege.
//
// Every process that must see the image's file owners (the unpacker, the box
// init) runs in a keep-id user namespace: the caller's own uid and gid appear
// unchanged inside, uid 0 inside is the first subordinate uid, and the rest of
// the subordinate range fills the other ids. The store is unpacked in that
// mapping once and boxes run in the very same mapping, so nothing is ever
// chowned twice.
//
// An unprivileged process cannot get such a namespace in one step: newuidmap
// must write the map after the child exists, and the child's exec happened
// before the map, so it has no capabilities. Start therefore builds two
// nested namespaces (see docs/architecture.md):
//
//	P1 host CLI ──clone(NEWUSER)──▶ P2 "outer": waits on a pipe while P1 runs
//	newuidmap/newgidmap (0→uid, 1..N→subids), then re-execs itself as uid 0 to
//	gain a full capability set ──clone(NEWUSER|NEWNS|…)──▶ P3 target stage, in
//	the keep-id inner namespace (written directly by P2, which is root in the
//	outer one), started as uid 0 with every capability in its namespaces.
//
// Only plain data crosses the boundary: the target stage name, the clone
// flags and the inner maps travel as one JSON value in an environment
// variable; extra file descriptors are passed through as 3, 4, ….
package rootless
