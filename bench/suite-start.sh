#!/usr/bin/env bash
# Start-up latency with the image already local: `devbox run IMG true`
# against rootless `podman run --rm IMG true` (crun), `crun run` on an
# unpacked bundle and `bwrap --unshare-all` on the same rootfs (the lower
# bound), same run. Also devbox's peak RSS.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-50}"
IMG="$REGISTRY/library/debian:trixie"
D="$WORK/devbox-store"
devbox="$WORK/devbox"
$devbox --store "$D" pull -q "$IMG" >/dev/null
# The same image in a store unpacked with a single-id map (no subordinate
# ids, as bwrap maps): shows what newuidmap and newgidmap cost.
D1="$WORK/devbox-store-single"
DEVBOX_SUBIDS=none $devbox --store "$D1" pull -q "$IMG" >/dev/null 2>&1
podman pull -q --tls-verify=false "$IMG" >/dev/null 2>&1 || true
B="$WORK/bundle-start"
if [ ! -d "$B/rootfs" ]; then
	rm -rf "$WORK/oci-start" "$B"
	skopeo copy -q --src-tls-verify=false "docker://$IMG" "oci:$WORK/oci-start:x"
	umoci unpack --rootless --image "$WORK/oci-start:x" "$B" >/dev/null
fi
# crun wants no terminal and a unique id per run.
sed -i 's/"terminal": true/"terminal": false/' "$B/config.json"
CRUNROOT="$XDG_RUNTIME_DIR/devbox-bench-crun"
mkdir -p "$CRUNROOT"
# "devbox run" repeats one command line, as a script or a shell loop does:
# the first run leaves a warm holder (internal/warm), whose spare inits run
# the boxes from the second run on, which replays the first through it.
# "no replay" (DEVBOX_WARM=noreplay) is a run as of a new command line: the
# CLI computes the spec and a spare runs it. The DEVBOX_WARM=0 row is every run as the
# first of its kind (through env, which costs a few tenths of a ms).
names=("devbox run" "devbox run, no replay (DEVBOX_WARM=noreplay)" "devbox run, DEVBOX_WARM=0" "devbox run, default network (not --net none)" "devbox run, single-id map" "bwrap --unshare-all")
cmdl=("$devbox --store $D run --net none $IMG true" "env DEVBOX_WARM=noreplay $devbox --store $D run --net none $IMG true" "env DEVBOX_WARM=0 $devbox --store $D run --net none $IMG true"
	"$devbox --store $D run $IMG true"
	"env DEVBOX_SUBIDS=none $devbox --store $D1 run --net none $IMG true"
	"bwrap --unshare-all --ro-bind $B/rootfs / --proc /proc --dev /dev true")
if crun --root "$CRUNROOT" run -b "$B" devbox-bench-probe >/dev/null 2>&1; then
	names+=("crun run")
	cmdl+=("crun --root $CRUNROOT run -b $B devbox-bench-crun")
else
	echo "crun run fails on this host: $(crun --root "$CRUNROOT" run -b "$B" devbox-bench-probe 2>&1 | tail -1)" | tee "$OUT/start-crun-error.txt"
fi
if podman run --rm --network none "$IMG" true >/dev/null 2>&1; then
	names+=("podman run --rm")
	cmdl+=("podman run --rm --network none $IMG true")
else
	echo "podman run fails on this host: $(podman run --rm --network none "$IMG" true 2>&1 | tail -1)" | tee "$OUT/start-podman-error.txt"
fi
# The machine's speed drifts over seconds (other VMs), and a command
# measured first in a hyperfine run is ~10% slower than later ones: so
# PASSES short hyperfine runs, alternately in one order and in the
# reverse one (podman always last, see below), RUNS/PASSES runs of each
# command per pass; medians over all passes.
PASSES="${PASSES:-10}"
per=$(((RUNS + PASSES - 1) / PASSES))
# podman stays last in every pass: a `podman run --rm` returns before its
# cleanup processes finish, and they would slow whatever runs next (this
# favours podman a little: a command measured later runs faster).
fwd=() rev=() last=()
n=${#names[@]}
if [ "${names[$((n - 1))]}" = "podman run --rm" ]; then
	last=(-n "${names[$((n - 1))]}" "${cmdl[$((n - 1))]}")
	n=$((n - 1))
fi
for ((i = 0; i < n; i++)); do fwd+=(-n "${names[$i]}" "${cmdl[$i]}"); done
for ((i = n - 1; i >= 0; i--)); do rev+=(-n "${names[$i]}" "${cmdl[$i]}"); done
fwd+=("${last[@]}")
rev+=("${last[@]}")
alternating_passes start 1 "$per"
rss=$(/usr/bin/time -f %M "$devbox" --store "$D" run --net none "$IMG" true 2>&1 >/dev/null | tail -1)
# The warm holders and their spare inits are devbox's processes too
# (spares run as the first subordinate uid: all users' processes).
hrss=$(ps -e -o rss=,args= | awk '$2 == "devbox-init" && ($3 == "holder" || $3 == "spare") {if ($1 > m) m = $1} END {print m + 0}')
med() { json_median "$OUT/start.json" "$1"; }
d=$(med "devbox run")
{
	echo "### Start-up latency, image local ($((PASSES * per)) runs in $PASSES passes of alternating order, medians)"
	echo
	echo "| command | median ms | devbox/command |"
	echo "|---|---|---|"
	for n in "${names[@]}"; do
		v=$(med "$n"); [ -n "$v" ] || continue
		awk -v n="$n" -v t="$v" -v d="$d" 'BEGIN{printf "| %s | %.1f | %.2f |\n", n, t*1000, d/t}'
	done
	echo
	echo "devbox peak RSS (largest process of the tree): $((rss / 1024)) MiB; largest warm holder or spare init: $((hrss / 1024)) MiB"
} | tee "$OUT/start-summary.md"
