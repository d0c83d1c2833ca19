#!/usr/bin/env bash
# Snapshots and clones, side by side with podman in the same run, on the
# same change: a stopped box / container of busybox into which 50 MiB were
# written (dd from /dev/urandom, again before every run, untimed).
#   - devbox snapshot (the writable layer renamed into the store) vs
#     podman commit (the closest podman has: the change tarred, hashed and
#     stored as an image layer);
#   - devbox clone (a new box over the same layers) vs podman commit +
#     podman create from that image (podman container clone copies the
#     configuration only, not the container's files);
#   - the disk each grows the store by (du as root of the user namespace:
#     podman unshare du -sb), measured once after the timed runs.
# Alternating passes (bench/lib.sh) for the time, medians.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-10}"
PASSES="${PASSES:-2}"
per=$(((RUNS + PASSES - 1) / PASSES))
D="$WORK/devbox-snapshot-store"
devbox="$WORK/devbox"
export XDG_RUNTIME_DIR
IMG="$REGISTRY/library/busybox:latest"
write50='dd if=/dev/urandom of=/big bs=1M count=50 2>/dev/null'
empty_store() {
	[ -d "$1" ] || return 0
	$devbox --store "$1" prune -f >/dev/null 2>&1 || true
	$devbox --store "$1" images --json | jq -r '.[].ref' | while read -r r; do $devbox --store "$1" rmi -f "$r" >/dev/null 2>&1; done
	$devbox --store "$1" image prune >/dev/null 2>&1 || true
	rm -rf "$1" 2>/dev/null || podman unshare rm -rf "$1"
}
podman_clean() {
	for c in snapc2 snapc; do podman rm -f "$c" >/dev/null 2>&1 || true; done
	podman rmi -f localhost/bench-snap:latest localhost/bench-clone:latest >/dev/null 2>&1 || true
	podman image prune -f >/dev/null 2>&1 || true
}

empty_store "$D"
podman_clean
$devbox --store "$D" create snapb --image "$IMG" --home "$WORK/snapb-home" --net none >/dev/null 2>&1
podman pull -q --tls-verify=false "$IMG" >/dev/null
podman create -q --name snapc --network none "$IMG" sleep 1000000 >/dev/null
# The untimed steps before each run, as scripts (hyperfine -N runs its
# --prepare commands without a shell too). Each ends with sync: the timed
# command must not pay for writing back the 50 MiB just written (a record's
# fsync on ext4 would flush them).
cat >"$WORK/snap-dprep.sh" <<EOS
$devbox --store $D rm -f snapb2 >/dev/null 2>&1
$devbox --store $D exec --root snapb sh -c '$write50' && $devbox --store $D stop snapb >/dev/null && sync
EOS
cat >"$WORK/snap-pprep.sh" <<EOS
podman rm -f snapc2 >/dev/null 2>&1
podman start snapc >/dev/null && podman exec snapc sh -c '$write50' && podman stop -t0 snapc >/dev/null && sync
EOS
dprep="sh $WORK/snap-dprep.sh"
pprep="sh $WORK/snap-pprep.sh"

# Snapshot vs commit.
fwd=(--prepare "$dprep" -n "devbox snapshot" "$devbox --store $D snapshot snapb"
	--prepare "$pprep" -n "podman commit" "podman commit -q snapc localhost/bench-snap:latest")
rev=("${fwd[@]:5:5}" "${fwd[@]:0:5}")
alternating_passes snapshot 0 "$per"

# Clone vs commit + create.
fwd=(--prepare "$dprep" -n "devbox clone" "$devbox --store $D clone snapb snapb2"
	--prepare "$pprep" -n "podman commit + create" "sh -c 'podman commit -q snapc localhost/bench-clone:latest >/dev/null && podman create -q --name snapc2 localhost/bench-clone:latest true >/dev/null'")
rev=("${fwd[@]:5:5}" "${fwd[@]:0:5}")
alternating_passes clone 0 "$per"

# Disk growth of one snapshot and one clone of a 50 MiB change.
PSTORE="$HOME/.local/share/containers/storage"
du_b() { podman unshare du -sb "$1" | cut -f1; }
$dprep
b=$(du_b "$D"); $devbox --store "$D" snapshot snapb >/dev/null; dsnap=$(($(du_b "$D") - b))
$dprep
b=$(du_b "$D"); $devbox --store "$D" clone snapb snapb2 >/dev/null; dclone=$(($(du_b "$D") - b))
$pprep
b=$(du_b "$PSTORE"); podman commit -q snapc localhost/bench-snap:latest >/dev/null; psnap=$(($(du_b "$PSTORE") - b))
$pprep
b=$(du_b "$PSTORE"); podman commit -q snapc localhost/bench-clone:latest >/dev/null && podman create -q --name snapc2 localhost/bench-clone:latest true >/dev/null
pclone=$(($(du_b "$PSTORE") - b))

podman_clean
empty_store "$D"

ms() { awk -v t="$(json_median "$1" "$2")" 'BEGIN{printf "%.1f", t*1000}'; }
kib() { awk -v b="$1" 'BEGIN{printf "%.0f", b/1024}'; }
{
	echo "### Snapshot and clone of a stopped box with 50 MiB of changes ($((PASSES * per)) runs, medians)"
	echo
	echo "| operation | devbox ms | podman ms | devbox/podman | devbox disk growth KiB | podman disk growth KiB |"
	echo "|---|---|---|---|---|---|"
	row() { awk -v n="$1" -v d="$2" -v p="$3" -v dg="$4" -v pg="$5" 'BEGIN{printf "| %s | %.1f | %.1f | %.3f | %s | %s |\n", n, d, p, d/p, dg, pg}'; }
	row "snapshot (podman: commit)" "$(ms "$OUT/snapshot.json" "devbox snapshot")" "$(ms "$OUT/snapshot.json" "podman commit")" "$(kib "$dsnap")" "$(kib "$psnap")"
	row "clone (podman: commit + create)" "$(ms "$OUT/clone.json" "devbox clone")" "$(ms "$OUT/clone.json" "podman commit + create")" "$(kib "$dclone")" "$(kib "$pclone")"
} | tee "$OUT/snapshot-summary.md"
