#!/usr/bin/env bash
# The garbage collector and the integrity check, side by side with podman
# in the same run, on the same state: 20 images (busybox plus one small
# layer each, pushed as bench/gcN:1 once) and 50 stopped boxes/containers
# of them.
#   - image prune with nothing to remove: `devbox image prune` (the mark
#     and sweep of store.GC) vs `podman image prune -f`;
#   - removing one image of 21 (its layer goes): `devbox rmi` (untag + GC)
#     vs `podman rmi`;
#   - `devbox df` vs `podman system df`;
#   - `devbox verify` of the Debian image (every blob rehashed, layers,
#     records); podman 4.3.1 has no counterpart (`podman system check`
#     came with podman 5.0), so it is reported alone.
# Alternating passes (bench/lib.sh), medians.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-20}"
PASSES="${PASSES:-4}"
per=$(((RUNS + PASSES - 1) / PASSES))
D="$WORK/devbox-gc-store"
V="$WORK/devbox-verify-store"
devbox="$WORK/devbox"
export XDG_RUNTIME_DIR
img() { echo "$REGISTRY/bench/gc$1:1"; }
# empty_store S: remove a store of an earlier run through devbox (its
# layers belong to subordinate ids), then what is left.
empty_store() {
	[ -d "$1" ] || return 0
	$devbox --store "$1" prune -f >/dev/null 2>&1
	$devbox --store "$1" images --json | jq -r '.[].ref' | while read -r r; do $devbox --store "$1" rmi "$r" >/dev/null 2>&1; done
	rm -rf "$1"
}

# 21 images: busybox plus one distinct small layer each.
if ! skopeo inspect --tls-verify=false "docker://$(img 21)" >/dev/null 2>&1; then
	rm -rf "$WORK/gcoci"
	skopeo copy -q --src-tls-verify=false "docker://$REGISTRY/library/busybox:latest" "oci:$WORK/gcoci:base"
	for i in $(seq 1 21); do
		echo "image $i" >"$WORK/gcfile"
		umoci insert --rootless --image "$WORK/gcoci:base" --tag "gc$i" "$WORK/gcfile" "/etc/gc-$i" >/dev/null
		skopeo copy -q --dest-tls-verify=false "oci:$WORK/gcoci:gc$i" "docker://$(img "$i")"
	done
	rm -rf "$WORK/gcoci" "$WORK/gcfile"
fi

# Same state for both: 20 images, 50 stopped boxes (box j of image j%20+1).
empty_store "$D"
for i in $(seq 1 20); do
	$devbox --store "$D" pull -q "$(img "$i")" >/dev/null
	podman pull -q --tls-verify=false "$(img "$i")" >/dev/null
done
for j in $(seq 0 49); do podman rm -f "gcbox$j" >/dev/null 2>&1 || true; done
for j in $(seq 0 49); do
	$devbox --store "$D" create "gcbox$j" --image "$(img $((j % 20 + 1)))" >/dev/null
	podman create -q --name "gcbox$j" "$(img $((j % 20 + 1)))" true >/dev/null
done

fwd=(-n "devbox image prune" "$devbox --store $D image prune" -n "podman image prune -f" "podman image prune -f")
rev=("${fwd[@]:3:3}" "${fwd[@]:0:3}")
alternating_passes gc-prune 2 "$per"

fwd=(-n "devbox df" "$devbox --store $D df" -n "podman system df" "podman system df")
rev=("${fwd[@]:3:3}" "${fwd[@]:0:3}")
alternating_passes gc-df 2 "$per"

# rmi of a 21st image: pulled again before every run.
I21=$(img 21)
hyperfine -N --runs "$RUNS" --style basic --export-json "$OUT/gc-rmi.json" \
	--prepare "$devbox --store $D pull -q $I21" -n "devbox rmi" "$devbox --store $D rmi $I21" \
	--prepare "podman pull -q --tls-verify=false $I21" -n "podman rmi" "podman rmi $I21" >"$OUT/gc-rmi.txt" 2>&1 || { cat "$OUT/gc-rmi.txt"; exit 1; }

empty_store "$V"
$devbox --store "$V" pull -q "$REGISTRY/library/debian:trixie" >/dev/null
hyperfine -N --warmup 1 --runs "$RUNS" --style basic --export-json "$OUT/gc-verify.json" \
	-n "devbox verify (debian)" "$devbox --store $V verify" >"$OUT/gc-verify.txt" 2>&1 || { cat "$OUT/gc-verify.txt"; exit 1; }
blob=$(du -sb "$V/oci/blobs" | cut -f1)

for j in $(seq 0 49); do podman rm -f "gcbox$j" >/dev/null 2>&1 || true; done
for i in $(seq 1 21); do podman rmi -f "$(img "$i")" >/dev/null 2>&1 || true; done
empty_store "$D"
empty_store "$V"

ms() { awk -v t="$(json_median "$1" "$2")" 'BEGIN{printf "%.1f", t*1000}'; }
{
	echo "### Garbage collector and verify: 20 images, 50 stopped boxes ($((PASSES * per)) runs, medians)"
	echo
	echo "| operation | devbox ms | podman ms | devbox/podman |"
	echo "|---|---|---|---|"
	row() { awk -v n="$1" -v d="$2" -v p="$3" 'BEGIN{printf "| %s | %.1f | %.1f | %.2f |\n", n, d, p, d/p}'; }
	row "image prune (nothing to remove)" "$(ms "$OUT/gc-prune.json" "devbox image prune")" "$(ms "$OUT/gc-prune.json" "podman image prune -f")"
	row "rmi of one image (of 21)" "$(ms "$OUT/gc-rmi.json" "devbox rmi")" "$(ms "$OUT/gc-rmi.json" "podman rmi")"
	row "df / system df" "$(ms "$OUT/gc-df.json" "devbox df")" "$(ms "$OUT/gc-df.json" "podman system df")"
	awk -v d="$(ms "$OUT/gc-verify.json" "devbox verify (debian)")" -v b="$blob" \
		'BEGIN{printf "| verify of debian:trixie (%.1f MiB of blobs rehashed) | %.1f | n/a (podman 4.3.1 has no system check) | - |\n", b/1048576, d}'
} | tee "$OUT/gc-summary.md"
