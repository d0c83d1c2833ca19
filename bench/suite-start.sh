#!/usr/bin/env bash
# Start-up latency with the image already local: `devbox run IMG true`
# against rootless `podman run --rm IMG true` (crun), `crun run` on an
# unpacked bundle and `bwrap --unshare-all` on the same rootfs (the lower
# bound), same run. Also devbox's peak RSS.
set -euo pipefail
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
args=(-N --warmup 3 --runs "$RUNS" --style basic --export-json "$OUT/start.json" --export-markdown "$OUT/start.md")
cmds=(-n "devbox run" "$devbox --store $D run --net none $IMG true")
cmds+=(-n "devbox run, single-id map" "env DEVBOX_SUBIDS=none $devbox --store $D1 run --net none $IMG true")
cmds+=(-n "bwrap --unshare-all" "bwrap --unshare-all --ro-bind $B/rootfs / --proc /proc --dev /dev true")
if crun --root "$CRUNROOT" run -b "$B" devbox-bench-probe >/dev/null 2>&1; then
	cmds+=(-n "crun run" "crun --root $CRUNROOT run -b $B devbox-bench-crun")
else
	echo "crun run fails on this host: $(crun --root "$CRUNROOT" run -b "$B" devbox-bench-probe 2>&1 | tail -1)" | tee "$OUT/start-crun-error.txt"
fi
if podman run --rm --network none "$IMG" true >/dev/null 2>&1; then
	cmds+=(-n "podman run --rm" "podman run --rm --network none $IMG true")
else
	echo "podman run fails on this host: $(podman run --rm --network none "$IMG" true 2>&1 | tail -1)" | tee "$OUT/start-podman-error.txt"
fi
hyperfine "${args[@]}" "${cmds[@]}" >"$OUT/start.hyperfine.txt" 2>&1 || { cat "$OUT/start.hyperfine.txt"; exit 1; }
rss=$(/usr/bin/time -f %M "$devbox" --store "$D" run --net none "$IMG" true 2>&1 >/dev/null | tail -1)
med() { awk -v n="\"command\": \"$1\"" 'index($0,n){f=1} f&&/"median"/{gsub(/[^0-9.e-]/,"",$2); print $2; exit}' FS=': ' "$OUT/start.json"; }
d=$(med "devbox run")
{
	echo "### Start-up latency, image local ($RUNS runs, medians)"
	echo
	echo "| command | median ms | devbox/command |"
	echo "|---|---|---|"
	for n in "devbox run" "devbox run, single-id map" "bwrap --unshare-all" "crun run" "podman run --rm"; do
		v=$(med "$n"); [ -n "$v" ] || continue
		awk -v n="$n" -v t="$v" -v d="$d" 'BEGIN{printf "| %s | %.1f | %.2f |\n", n, t*1000, d/t}'
	done
	echo
	echo "devbox peak RSS (largest process of the tree): $((rss / 1024)) MiB"
} | tee "$OUT/start-summary.md"
